"""Retention policy: classes from record data, lock dates, policy checks and policy changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from archive.core.errors import ArchiveError
from retention.facts import RecordFacts
from retention.policy import (
    Classification,
    LockAction,
    PolicyError,
    RetentionPolicy,
    classification_for,
    classify,
    compare,
    dossier_class,
    is_expired,
    load_policy,
    parse_policy,
    plan_lock,
    retain_until,
)

VN = ZoneInfo("Asia/Ho_Chi_Minh")
DISCHARGED = datetime(2025, 3, 10, 9, 0, tzinfo=VN)
SHIPPED_TEXT = resources.files("retention").joinpath("policy.toml").read_text("utf-8")


@pytest.fixture(scope="module")
def policy() -> RetentionPolicy:
    return load_policy()


def facts(**kw: object) -> RecordFacts:
    kw.setdefault("discharged_at", DISCHARGED)
    return RecordFacts(**kw)  # type: ignore[arg-type]


def local_new_year(year: int) -> datetime:
    return datetime(year, 1, 1, tzinfo=VN).astimezone(UTC)


# --- classification -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "class_id", "years"),
    [
        pytest.param(
            facts(encounter_class="AMB", icd10_codes=("J06.9",)),
            "ordinary",
            10,
            id="outpatient-visit",
        ),
        pytest.param(facts(encounter_class="IMP"), "ordinary", 10, id="no-codes"),
        pytest.param(facts(icd10_codes=("F32.1",)), "mental", 20, id="mental-F32.1"),
        pytest.param(facts(icd10_codes=("f321",)), "mental", 20, id="mental-dotless-lowercase"),
        pytest.param(
            facts(icd10_codes=("S06.0", "V43.5"), accident_code="1"),
            "accident_traffic",
            20,
            id="traffic-V43.5+1",
        ),
        pytest.param(facts(icd10_codes=("V43.5",)), "accident_traffic", 20, id="traffic-icd-only"),
        pytest.param(
            facts(icd10_codes=("W20",), accident_code="2"), "accident_work", 20, id="work-W20+2"
        ),
        pytest.param(
            facts(icd10_codes=("W10",), accident_code="8"),
            "accident_domestic",
            20,
            id="domestic-W10+8",
        ),
        pytest.param(facts(icd10_codes=("W10",)), "accident_other", 20, id="external-cause-only"),
        pytest.param(facts(accident_code="6"), "accident_other", 20, id="self-harm-code"),
        pytest.param(facts(accident_code="0"), "ordinary", 10, id="accident-code-0-none"),
        pytest.param(
            facts(icd10_codes=("T88.7", "Y57.9")),
            "ordinary",
            10,
            id="adverse-drug-effect-not-accident",
        ),
        pytest.param(
            facts(procedure_codes=("55.69",)),
            "transplant_donor_recipient",
            30,
            id="kidney-transplant-55.69",
        ),
        pytest.param(
            facts(procedure_codes=("5569",)),
            "transplant_donor_recipient",
            30,
            id="kidney-transplant-dotless",
        ),
        pytest.param(
            facts(icd10_codes=("Z52.4",)), "transplant_donor_recipient", 30, id="kidney-donor"
        ),
        pytest.param(facts(procedure_codes=("41.05",)), "transplant", 20, id="stem-cell-41.05"),
        pytest.param(facts(icd10_codes=("Z52.0",)), "ordinary", 10, id="blood-donor"),
        pytest.param(facts(procedure_codes=("37.52",)), "ordinary", 10, id="artificial-heart"),
        pytest.param(facts(procedure_codes=("86.82",)), "cosmetic", 20, id="cosmetic-86.82"),
        pytest.param(facts(procedure_codes=("21.85",)), "cosmetic", 20, id="rhinoplasty"),
        pytest.param(facts(procedure_codes=("21.81",)), "ordinary", 10, id="nose-laceration"),
        pytest.param(facts(treatment_result="5"), "death", 30, id="death-ket-qua-5"),
        pytest.param(facts(treatment_result="8"), "death", 30, id="death-outside-hospital-8"),
        pytest.param(facts(treatment_result="6"), "ordinary", 10, id="grave-prognosis-home-6"),
        pytest.param(facts(discharge_disposition="exp"), "death", 30, id="death-disposition"),
        pytest.param(facts(deceased=True), "death", 30, id="death-deceased"),
        pytest.param(facts(icd10_codes=("R99",)), "death", 30, id="death-ill-defined-R99"),
        pytest.param(facts(incident_file=True), "incident", None, id="incident-permanent"),
    ],
)
def test_classify(
    policy: RetentionPolicy, record: RecordFacts, class_id: str, years: int | None
) -> None:
    result = classify(record, policy)
    assert (result.class_id, result.years) == (class_id, years)
    assert result.is_permanent is (years is None)
    assert policy.ref in result.reason


def test_a_record_matching_several_rules_takes_the_longest(policy: RetentionPolicy) -> None:
    result = classify(facts(icd10_codes=("F20.0",), treatment_result="5"), policy)
    assert (result.class_id, result.years) == ("death", 30)
    assert set(result.matched_rules) == {"mental_illness", "death_treatment_result"}
    assert "the longest, death, applies" in result.reason


def test_equal_periods_take_the_class_declared_first(policy: RetentionPolicy) -> None:
    # Mental (20) and cosmetic (20): same lock, the label is the one declared first.
    result = classify(facts(icd10_codes=("F32.1",), procedure_codes=("86.82",)), policy)
    assert (result.class_id, result.years) == ("mental", 20)
    assert set(result.matched_rules) == {"mental_illness", "cosmetic_surgery"}


def test_the_reason_names_rules_but_no_codes_or_dates(policy: RetentionPolicy) -> None:
    late = datetime(2031, 6, 1, tzinfo=VN)
    record = facts(discharged_at=late, icd10_codes=("F32.1",), procedure_codes=("86.82",))
    result = classify(record, policy)
    assert "F32" not in result.reason
    assert "86.82" not in result.reason
    assert "2031" not in result.reason
    assert "mental_illness" in result.reason


def test_record_facts_repr_shows_no_codes() -> None:
    text = repr(facts(icd10_codes=("F32.1",), accident_code="6", deceased=True))
    assert "F32" not in text
    assert "accident" not in text
    assert "deceased" not in text


def test_record_facts_refuse_a_naive_discharge_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        RecordFacts(discharged_at=datetime(2025, 1, 1))


def test_record_facts_from_a_collected_encounter(policy: RetentionPolicy) -> None:
    from archive.sources import EncounterBundle

    bundle = EncounterBundle(
        encounter_id="enc-1",
        patient_id="pat-1",
        facility_code="79001",
        admitted_at=DISCHARGED - timedelta(days=3),
        discharged_at=DISCHARGED,
        encounter_class="IMP",
        department_code=None,
        discharge_disposition="home",
        accident_code="1",
        treatment_result="2",
        icd10_codes=("S06.0", "V43.5"),
        procedure_codes=(),
        patient_deceased=True,
        record_number=None,
        episode_key=None,
        bundle={},
        canonical=b"{}",
    )
    record = RecordFacts.from_bundle(bundle)
    assert record.deceased
    assert record.icd10_codes == ("S06.0", "V43.5")
    assert classify(record, policy).class_id == "death"


def test_register_is_assigned_explicitly(policy: RetentionPolicy) -> None:
    result = classification_for(policy, "register")
    assert (result.class_id, result.years, result.matched_rules) == ("register", 5, ())
    with pytest.raises(PolicyError, match="no class 'nope'"):
        classification_for(policy, "nope")


# --- retain-until ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("discharged_at", "years", "until"),
    [
        pytest.param(
            datetime(2028, 2, 29, 10, 0, tzinfo=VN), 10, local_new_year(2039), id="leap-day"
        ),
        pytest.param(
            datetime(2025, 12, 31, 23, 30, tzinfo=VN),
            10,
            local_new_year(2036),
            id="31-dec-23:30-local",
        ),
        pytest.param(
            datetime(2025, 12, 31, 16, 30, tzinfo=UTC),
            10,
            local_new_year(2036),
            id="same-instant-given-in-utc",
        ),
        pytest.param(
            datetime(2025, 12, 31, 17, 30, tzinfo=UTC),
            10,
            local_new_year(2037),
            id="utc-31-dec-is-local-1-jan",
        ),
        pytest.param(
            datetime(2026, 1, 1, 0, 5, tzinfo=VN), 10, local_new_year(2037), id="1-jan-00:05-local"
        ),
        pytest.param(
            datetime(2025, 3, 10, 9, 0, tzinfo=VN), 30, local_new_year(2056), id="death-30"
        ),
    ],
)
def test_retain_until_counts_from_the_end_of_the_local_discharge_year(
    discharged_at: datetime, years: int, until: datetime
) -> None:
    c = Classification(class_id="x", years=years, lock_years=years, matched_rules=(), reason="")
    result = retain_until(c, discharged_at=discharged_at)
    assert result == until
    assert result.tzinfo is UTC
    assert (result.month, result.day, result.hour) == (12, 31, 17)  # 00:00 +07:00


def test_31_december_local_is_16_30_utc_and_counts_in_its_local_year(
    policy: RetentionPolicy,
) -> None:
    late = datetime(2025, 12, 31, 23, 30, tzinfo=VN)
    assert late.astimezone(UTC) == datetime(2025, 12, 31, 16, 30, tzinfo=UTC)
    c = classify(RecordFacts(discharged_at=late), policy)
    assert retain_until(c, discharged_at=late) == datetime(2035, 12, 31, 17, 0, tzinfo=UTC)


def test_permanent_uses_the_documented_horizon(policy: RetentionPolicy) -> None:
    c = classify(facts(incident_file=True), policy)
    assert c.is_permanent
    assert c.years is None
    assert c.lock_years == policy.permanent_horizon_years == 100
    assert retain_until(c, discharged_at=DISCHARGED) == local_new_year(2126)


def test_retain_until_refuses_naive_times_and_unknown_zones(policy: RetentionPolicy) -> None:
    c = classify(facts(), policy)
    with pytest.raises(ValueError, match="timezone-aware"):
        retain_until(c, discharged_at=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="unknown time zone"):
        retain_until(c, discharged_at=DISCHARGED, tz="Asia/Saigon_")


def test_is_expired_at_the_exact_instant() -> None:
    until = local_new_year(2036)
    assert not is_expired(until, until - timedelta(microseconds=1))
    assert is_expired(until, until)
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        is_expired(until, datetime(2040, 1, 1))


# --- dossiers -------------------------------------------------------------------------------------


def test_dossier_takes_the_longest_class(policy: RetentionPolicy) -> None:
    records = [facts(), facts(icd10_codes=("F32.1",)), facts(treatment_result="5"), facts()]
    result = dossier_class(classify(r, policy) for r in records)
    assert (result.class_id, result.years) == ("death", 30)
    assert result.matched_rules == ("mental_illness", "death_treatment_result")
    assert "4 record(s)" in result.reason
    assert "ordinary x2" in result.reason


def test_permanent_beats_any_number_of_years_in_a_dossier(policy: RetentionPolicy) -> None:
    death = classify(facts(treatment_result="5"), policy)
    incident = classify(facts(incident_file=True), policy)
    result = dossier_class([death, incident, death])
    assert result.class_id == "incident"
    assert result.is_permanent


def test_an_empty_dossier_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one"):
        dossier_class([])


# --- the shipped policy ---------------------------------------------------------------------------


def test_shipped_policy_loads_with_a_legal_basis_for_every_class(policy: RetentionPolicy) -> None:
    assert policy.ref == "vn-tt33-2025@1"
    assert policy.default_class == "ordinary"
    assert policy.source.endswith("(shipped)")
    assert len(policy.sha256) == 64
    years = {c.class_id: c.years for c in policy.classes}
    assert years == {
        "incident": None,
        "death": 30,
        "transplant_donor_recipient": 30,
        "transplant": 20,
        "mental": 20,
        "accident_work": 20,
        "accident_traffic": 20,
        "accident_domestic": 20,
        "accident_other": 20,
        "cosmetic": 20,
        "ordinary": 10,
        "register": 5,
    }
    for cls in policy.classes:
        assert cls.legal_basis.strip()
        assert cls.title.strip()
        assert cls.secondary, f"{cls.class_id}: the (2°) caveat must stay until verified"
    assert "dòng 44" in policy.retention_class("ordinary").legal_basis


def test_load_policy_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(SHIPPED_TEXT.replace("version = 1", "version = 7"), encoding="utf-8")
    assert load_policy(path).ref == "vn-tt33-2025@7"
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.toml")


# --- bad policy files -----------------------------------------------------------------------------

MINIMAL = """\
policy_id = "test"
version = 1
default_class = "ordinary"
permanent_horizon_years = 100

[classes.ordinary]
years = 10
legal_basis = "row 44"

[classes.mental]
years = 20
legal_basis = "row 40"

[classes.death]
years = 30
legal_basis = "row 39"

[rules.mental]
class = "mental"
icd10 = [
  "F00-F99",
]

[rules.death]
class = "death"
treatment_results = ["5"]
"""


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    found = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    return found[occurrence - 1 if occurrence > 0 else occurrence]


def test_the_minimal_policy_is_valid() -> None:
    assert parse_policy(MINIMAL).ref == "test@1"


BAD_POLICIES = [
    pytest.param(
        MINIMAL.replace('class = "death"', 'class = "dead"'),
        'class = "dead"',
        "unknown class 'dead'",
        id="unknown-class",
    ),
    pytest.param(
        MINIMAL.replace("years = 20", "years = -20"),
        "years = -20",
        "from 1 to 100",
        id="negative-years",
    ),
    pytest.param(
        MINIMAL.replace("years = 20", "years = 0"), "years = 0", "from 1 to 100", id="zero-years"
    ),
    pytest.param(
        MINIMAL.replace("years = 20", "years = 20.5"),
        "years = 20.5",
        "whole number",
        id="fractional-years",
    ),
    pytest.param(
        MINIMAL + '\n[classes.mental]\nyears = 25\nlegal_basis = "x"\n',
        "[classes.mental]",
        "declared twice (first at line 10)",
        id="duplicate-class",
    ),
    pytest.param(
        MINIMAL + '\n[rules.dup]\nclass = "death"\nicd10 = ["F00-F99"]\n',
        'icd10 = ["F00-F99"]',
        "overlapping rules",
        id="identical-range",
    ),
    pytest.param(
        MINIMAL + '\n[rules.alcohol]\nclass = "ordinary"\nicd10 = ["F10-F19"]\n',
        '"F10-F19"',
        "overlapping rules",
        id="nested-range-other-class",
    ),
    pytest.param(
        MINIMAL + '\n[rules.alcohol]\nclass = "mental"\nicd10 = ["F10.2"]\n',
        '"F10.2"',
        "overlapping rules",
        id="nested-code-same-class",
    ),
    pytest.param(
        MINIMAL.replace('  "F00-F99",', '  "F00-F99",\n  "F32",'),
        '"F32"',
        "the same rule",
        id="overlap-inside-one-rule",
    ),
    pytest.param(
        MINIMAL + '\n[rules.dead2]\nclass = "mental"\ntreatment_results = ["5"]\n',
        'treatment_results = ["5"]',
        "overlapping rules",
        id="same-code-two-classes",
    ),
    pytest.param(
        MINIMAL + '\n[rules.d1]\nclass = "death"\ndeceased = true\n'
        '\n[rules.d2]\nclass = "death"\ndeceased = true\n',
        "deceased = true",
        "overlapping rules",
        id="flag-twice",
    ),
    pytest.param(MINIMAL.replace('"F00-F99"', '"F00-F9"'), '"F00-F9"', "F00-F9", id="malformed"),
    pytest.param(
        MINIMAL.replace('"F00-F99"', '"f00-f99"'), '"f00-f99"', "malformed", id="lower-case"
    ),
    pytest.param(
        MINIMAL.replace('"F00-F99"', '"F99-F00"'), '"F99-F00"', "backwards", id="backwards"
    ),
    pytest.param(
        MINIMAL.replace('"F00-F99"', '"F00-F10.1"'),
        '"F00-F10.1"',
        "different forms",
        id="mixed-forms",
    ),
    pytest.param(
        MINIMAL.replace('"F00-F99"', '"F00-F50-F99"'), '"F00-F50-F99"', "malformed", id="three-ends"
    ),
    pytest.param(
        MINIMAL.replace("version = 1\n", ""),
        "[classes.ordinary]",
        "'version' is missing",
        id="missing-version",
    ),
    pytest.param(
        MINIMAL.replace("version = 1", 'version = "1"'),
        'version = "1"',
        "whole number",
        id="version-not-integer",
    ),
    pytest.param(
        MINIMAL.replace('legal_basis = "row 40"', 'legal_basis = "row 40"\nyeers = 2'),
        "yeers = 2",
        "unknown key 'yeers'",
        id="unknown-key",
    ),
    pytest.param(
        MINIMAL.replace('legal_basis = "row 40"\n', ""),
        "[classes.mental]",
        "'legal_basis' is missing",
        id="missing-legal-basis",
    ),
    pytest.param(
        MINIMAL.replace("years = 30", "years = 30\npermanent = true"),
        "years = 30",
        "permanent and has years",
        id="permanent-and-years",
    ),
    pytest.param(
        MINIMAL.replace("years = 30", "years = 101"),
        "years = 101",
        "from 1 to 100",
        id="years-beyond-the-legal-maximum",
    ),
    pytest.param(
        MINIMAL.replace("years = 30", "years = 9999"),
        "years = 9999",
        "permanent = true",
        id="permanent-written-as-a-number",
    ),
    pytest.param(
        MINIMAL.replace("years = 30", 'years = "permanent"'),
        'years = "permanent"',
        "permanent = true",
        id="permanent-written-as-years",
    ),
    pytest.param(
        MINIMAL.replace("permanent_horizon_years = 100", "permanent_horizon_years = 10000"),
        "permanent_horizon_years",
        "from 1 to 200",
        id="horizon-beyond-any-lock-date",
    ),
    pytest.param(
        MINIMAL.replace("permanent_horizon_years = 100", "permanent_horizon_years = 30"),
        "permanent_horizon_years",
        "must exceed",
        id="horizon-too-short",
    ),
    pytest.param(
        MINIMAL.replace('treatment_results = ["5"]', "deceased = false"),
        "deceased = false",
        "can only be true",
        id="negated-flag",
    ),
    pytest.param(
        MINIMAL.replace('treatment_results = ["5"]', 'discharge_dispositions = ["expired"]'),
        "expired",
        "not a valid code",
        id="unknown-disposition",
    ),
    pytest.param(
        MINIMAL.replace('treatment_results = ["5"]', ""),
        "[rules.death]",
        "no matcher",
        id="rule-without-matcher",
    ),
    pytest.param(
        MINIMAL.replace('class = "death"', 'class = "death'),
        'class = "death',
        "not valid TOML",
        id="toml-syntax",
    ),
    pytest.param(
        MINIMAL.replace('default_class = "ordinary"', 'default_class = "normal"'),
        "default_class",
        "unknown class 'normal'",
        id="unknown-default",
    ),
    pytest.param(
        MINIMAL.replace("[classes.death]", "[classes.Death]"),
        "[classes.Death]",
        "lower-case",
        id="bad-class-id",
    ),
]


@pytest.mark.parametrize(("text", "needle", "message"), BAD_POLICIES)
def test_bad_policy_is_refused_naming_the_line(text: str, needle: str, message: str) -> None:
    expected = line_of(text, needle, occurrence=-1)  # the later of two clashing lines
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, source="bad.toml")
    err = caught.value
    assert message in str(err)
    assert err.line == expected, str(err)
    assert str(err).startswith(f"bad.toml, line {expected}: ")
    assert isinstance(err, ArchiveError)


def test_the_longest_period_and_horizon_allowed_load_and_lock() -> None:
    text = MINIMAL.replace("years = 30", "years = 100").replace(
        "permanent_horizon_years = 100", "permanent_horizon_years = 200"
    )
    policy = parse_policy(text)
    assert max(c.years or 0 for c in policy.classes) == 100
    assert policy.permanent_horizon_years == 200
    c = Classification(class_id="x", years=None, lock_years=200, matched_rules=(), reason="")
    assert retain_until(c, discharged_at=DISCHARGED) == local_new_year(2226)


def test_a_flag_set_by_two_rules_names_the_second() -> None:
    text = (
        MINIMAL + '\n[rules.d1]\nclass = "death"\ndeceased = true\n'
        '\n[rules.d2]\nclass = "death"\ndeceased = true\n'
    )
    with pytest.raises(PolicyError) as caught:
        parse_policy(text)
    assert caught.value.line == line_of(text, "deceased = true", occurrence=2)
    assert "rule 'd1'" in str(caught.value)


def test_a_policy_that_is_not_utf8_names_the_line() -> None:
    data = MINIMAL.encode().replace(b'"row 40"', b'"d\xf2ng 40"')
    with pytest.raises(PolicyError, match="not UTF-8") as caught:
        parse_policy(data)
    assert caught.value.line == line_of(MINIMAL, '"row 40"')


# --- policy changes -------------------------------------------------------------------------------


def changed(old: str, new: str) -> RetentionPolicy:
    assert old in SHIPPED_TEXT
    text = SHIPPED_TEXT.replace(old, new).replace("version = 1", "version = 2")
    return parse_policy(text, source="new.toml")


def test_a_shorter_rule_leaves_the_lock_and_is_reported(policy: RetentionPolicy) -> None:
    shorter = changed("[classes.cosmetic]\nyears = 20", "[classes.cosmetic]\nyears = 10")
    change = plan_lock(policy, shorter, facts(procedure_codes=("86.82",)))
    assert change.action is LockAction.KEEP_LONGER
    assert str(change.action) == "shorter rule, lock unchanged"
    assert change.new_retain_until < change.old_retain_until == change.current_retain_until
    assert change.retain_until == change.old_retain_until == local_new_year(2046)
    assert not change.class_changed


def test_a_longer_rule_extends_the_lock(policy: RetentionPolicy) -> None:
    longer = changed("[classes.mental]\nyears = 20", "[classes.mental]\nyears = 25")
    record = facts(icd10_codes=("F32.1",))
    change = plan_lock(policy, longer, record)
    assert change.action is LockAction.EXTEND
    assert change.retain_until == change.new_retain_until == local_new_year(2051)


def test_a_record_rising_to_a_longer_class_is_extended(policy: RetentionPolicy) -> None:
    wider = changed('treatment_results = ["5", "8"]', 'treatment_results = ["5", "6", "8"]')
    change = plan_lock(policy, wider, facts(treatment_result="6"))
    assert (change.old.class_id, change.new.class_id) == ("ordinary", "death")
    assert change.class_changed
    assert change.action is LockAction.EXTEND
    assert change.retain_until == local_new_year(2056)


def test_compare_reports_every_record_in_order(policy: RetentionPolicy) -> None:
    shorter = changed("[classes.cosmetic]\nyears = 20", "[classes.cosmetic]\nyears = 10")
    records = [facts(), facts(procedure_codes=("86.82",)), facts(treatment_result="5")]
    actions = [c.action for c in compare(policy, shorter, records)]
    assert actions == [LockAction.UNCHANGED, LockAction.KEEP_LONGER, LockAction.UNCHANGED]


def test_a_lock_already_beyond_the_new_date_is_left(policy: RetentionPolicy) -> None:
    current = local_new_year(2090)
    change = plan_lock(policy, policy, facts(), current_retain_until=current)
    assert change.action is LockAction.KEEP_LONGER
    assert change.retain_until == current

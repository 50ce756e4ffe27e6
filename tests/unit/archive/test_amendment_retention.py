"""Catalogued encounters seen again: unchanged, amended, or changed after their retention period
ended — the last quarantined ``retention-ended`` (a disposition matter), never sent to the
worker, where Object Lock refused the past retain-until with ``store.error`` on every run."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta

from archive.pipeline.amendments import ended_before_archiving, sort_known
from archive.pipeline.classifier import RetentionDecision, decide
from archive.sources import EncounterBundle, QuarantineReason, QuarantineScope

NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
YEARS = 10


class TenYears:
    """Ten years from discharge; a record with an ``X`` diagnosis cannot be classified.
    ``kept``: what the retention register says the records department extended, by encounter."""

    def __init__(self, kept: Mapping[str, RetentionDecision] | None = None) -> None:
        self.kept = dict(kept or {})
        self.asked: list[set[str]] = []

    def extensions(self, encounter_ids: Collection[str]) -> Mapping[str, RetentionDecision]:
        self.asked.append(set(encounter_ids))
        return {e: self.kept[e] for e in encounter_ids if e in self.kept}

    def decide(self, bundle: EncounterBundle) -> RetentionDecision:
        if "X99" in bundle.icd10_codes:
            raise ValueError("no class")
        end = bundle.discharged_at.replace(year=bundle.discharged_at.year + YEARS)
        return RetentionDecision("ordinary", end)


def no_locks(encounter_ids: Collection[str]) -> Mapping[str, RetentionDecision]:
    """No catalogued version is locked longer than its class gives."""
    return {}


def _bundle(eid: str, discharged: datetime, data: str, *, kind: str = "fhir") -> EncounterBundle:
    return EncounterBundle(
        encounter_id=eid,
        patient_id="BN-0001",
        facility_code="79001",
        admitted_at=discharged - timedelta(days=3),
        discharged_at=discharged,
        encounter_class="IMP",
        department_code=None,
        discharge_disposition="home",
        accident_code=None,
        treatment_result=None,
        icd10_codes=(),
        procedure_codes=(),
        patient_deceased=False,
        record_number="HS-1",
        episode_key=None,
        bundle={},
        canonical=data.encode(),
        source_kind=kind,
    )


OLD = datetime(2010, 5, 2, tzinfo=UTC)  # period ended in 2020
RECENT = datetime(2024, 5, 2, tzinfo=UTC)  # period runs until 2034


def test_a_change_after_the_period_ended_is_quarantined_not_sent_to_the_worker() -> None:
    changed = _bundle("enc-old", OLD, "corrected")
    before = _bundle("enc-old", OLD, "original")
    found = sort_known(
        [changed], {"enc-old": [before.sha256]}, TenYears(), NOW, "manifest.csv", no_locks
    )
    assert (found.changed, found.amended, found.unchanged) == ([], 0, 0)
    [entry] = found.ended
    assert entry.reason is QuarantineReason.RETENTION_ENDED
    assert entry.scope is QuarantineScope.ENCOUNTER
    assert (entry.encounter_id, entry.source_file, entry.raw_line) == (
        "enc-old",
        "manifest.csv",
        b"corrected",
    )
    # What a records officer must do, and no PHI: no ids, no dates of care.
    assert "class ordinary" in entry.detail
    assert "disposition" in entry.detail
    assert "not an amendment" in entry.detail
    for phi in ("BN-0001", "enc-old", "HS-1", "2010"):
        assert phi not in entry.detail


def test_a_scanned_record_is_told_to_state_a_longer_class_in_its_manifest() -> None:
    changed = _bundle("paper-1", OLD, "row v2", kind="scanned")
    found = sort_known([changed], {"paper-1": ["x"]}, TenYears(), NOW, "m.csv", no_locks)
    [entry] = found.ended
    assert "retention_class in the scan manifest" in entry.detail


def test_the_period_ending_exactly_now_counts_as_ended() -> None:
    discharged = NOW.replace(year=NOW.year - YEARS)
    found = sort_known(
        [_bundle("e", discharged, "new")], {"e": ["old"]}, TenYears(), NOW, "x", no_locks
    )
    assert len(found.ended) == 1
    assert found.changed == []


def test_a_change_within_the_period_is_the_next_revision() -> None:
    found = sort_known(
        [_bundle("e", RECENT, "v3")], {"e": ["v1", "v2"]}, TenYears(), NOW, "x", no_locks
    )
    assert found.ended == []
    assert found.amended == 1
    [bundle] = found.changed
    assert bundle.revision == 3


def test_an_unchanged_record_past_its_period_is_already_archived_not_quarantined() -> None:
    same = _bundle("e", OLD, "archived")
    found = sort_known([same], {"e": ["older", same.sha256]}, TenYears(), NOW, "x", no_locks)
    assert (found.unchanged, found.changed, found.ended) == (1, [], [])


def test_an_unclassifiable_change_is_left_to_the_worker_which_fails_it_with_its_reason() -> None:
    bad = dataclasses.replace(_bundle("e", OLD, "new"), icd10_codes=("X99",))
    found = sort_known([bad], {"e": ["old"]}, TenYears(), NOW, "x", no_locks)
    assert found.ended == []
    assert [b.revision for b in found.changed] == [2]


def test_mixed_batch_keeps_order_and_counts() -> None:
    a = _bundle("a", RECENT, "a2")
    b = _bundle("b", OLD, "b2")
    c = _bundle("c", OLD, "c1")
    found = sort_known(
        [a, b, c], {"a": ["a1"], "b": ["b1"], "c": [c.sha256]}, TenYears(), NOW, "x", no_locks
    )
    assert [x.encounter_id for x in found.changed] == ["a"]
    assert [e.encounter_id for e in found.ended] == ["b"]
    assert (found.amended, found.unchanged) == (1, 1)


class Refuses:
    """A classifier that must not be asked: a recent record cannot be past any period."""

    def decide(self, bundle: EncounterBundle) -> RetentionDecision:
        raise AssertionError("a recent record was classified during collection")

    def extensions(self, encounter_ids: Collection[str]) -> Mapping[str, RetentionDecision]:
        raise AssertionError("a new record has no extension to look up")


def test_a_new_record_past_its_period_is_quarantined_before_any_worker() -> None:
    """A backfill over years long past: the lock date would be in the past, which Object Lock
    refuses, so the worker failed such a record with store.error on every run."""
    entry = ended_before_archiving(_bundle("enc-2010", OLD, "data"), TenYears(), NOW)
    assert entry is not None
    assert entry.reason is QuarantineReason.RETENTION_ENDED
    assert (entry.encounter_id, entry.raw_line) == ("enc-2010", b"data")
    assert "class ordinary" in entry.detail
    assert "retention policy" in entry.detail
    for phi in ("BN-0001", "enc-2010", "HS-1", "2010"):
        assert phi not in entry.detail
    # Within its period, recent (never classified here), a scan (judged by its manifest's
    # reader) or unclassifiable (left to the worker, which names the reason): archived as ever.
    assert ended_before_archiving(_bundle("e", RECENT, "d"), TenYears(), NOW) is None
    assert (
        ended_before_archiving(_bundle("e", NOW - timedelta(days=30), "d"), Refuses(), NOW) is None
    )
    assert ended_before_archiving(_bundle("p", OLD, "d", kind="scanned"), TenYears(), NOW) is None
    odd = dataclasses.replace(_bundle("x", OLD, "d"), icd10_codes=("X99",))
    assert ended_before_archiving(odd, TenYears(), NOW) is None


# --- a retention the records department extended (retention register, ``lock.extended``) -----

KEPT = RetentionDecision("death", datetime(2040, 5, 2, tzinfo=UTC))


def test_an_amendment_of_an_extended_record_is_archived_until_the_extension() -> None:
    """The facility chose to keep the record past its class (an upgrade): a correction after
    the class ended is the next revision, locked until the extension, not quarantined."""
    classifier = TenYears({"enc-old": KEPT})
    found = sort_known(
        [_bundle("enc-old", OLD, "corrected")], {"enc-old": ["v1"]}, classifier, NOW, "x", no_locks
    )
    assert found.ended == []
    [bundle] = found.changed
    assert (bundle.revision, found.amended) == (2, 1)
    # What the worker locks it with: the extension, which the bundle carries to the worker.
    assert decide(classifier, bundle) == KEPT
    assert decide(TenYears(), bundle) == KEPT  # a worker's classifier knows no register


def test_the_register_is_asked_once_per_batch_for_the_changed_records_only() -> None:
    classifier = TenYears({"b": KEPT})
    same = _bundle("c", OLD, "c1")
    batch = [_bundle("a", RECENT, "a2"), _bundle("b", OLD, "b2"), same]
    sort_known(
        batch, {"a": ["a1"], "b": ["b1"], "c": [same.sha256]}, classifier, NOW, "x", no_locks
    )
    assert classifier.asked == [{"a", "b"}]


def test_an_extension_that_has_also_ended_is_still_quarantined() -> None:
    ended = RetentionDecision("mental", datetime(2025, 5, 2, tzinfo=UTC))
    found = sort_known(
        [_bundle("e", OLD, "new")], {"e": ["old"]}, TenYears({"e": ended}), NOW, "x", no_locks
    )
    [entry] = found.ended
    assert "class mental" in entry.detail
    assert found.changed == []


def test_an_extension_never_shortens_the_lock_its_class_gives() -> None:
    """A register date earlier than the class's own (say, a policy lengthened since): the
    longer wins; an Object Lock in COMPLIANCE mode can never be shortened anyway."""
    short = RetentionDecision("register", datetime(2030, 1, 1, tzinfo=UTC))
    classifier = TenYears({"e": short})
    [bundle] = sort_known(
        [_bundle("e", RECENT, "v2")], {"e": ["v1"]}, classifier, NOW, "x", no_locks
    ).changed
    assert decide(classifier, bundle) == RetentionDecision(
        "ordinary", datetime(2034, 5, 2, tzinfo=UTC)
    )


def test_an_extension_is_not_given_to_a_new_record_nor_to_an_unchanged_one() -> None:
    classifier = TenYears({"e": KEPT, "n": KEPT})
    same = _bundle("e", OLD, "same")
    found = sort_known([same], {"e": [same.sha256]}, classifier, NOW, "x", no_locks)
    assert (found.unchanged, classifier.asked) == (1, [])
    assert ended_before_archiving(_bundle("n", OLD, "d"), classifier, NOW) is not None


# --- an earlier version locked longer than the amendment's data now classifies -------------------


def test_an_amendment_is_locked_at_least_as_long_as_any_catalogued_version() -> None:
    """The first version was catalogued under a longer class (data since corrected: no death,
    say), and no register extension: the record's retention is the longest any version required
    (a dossier takes its longest class; a class never falls on new data), so the correction is
    locked as long, under that class, and not quarantined after its own class ended."""
    earlier = RetentionDecision("death", datetime(2040, 12, 31, 17, tzinfo=UTC))
    asked: list[set[str]] = []

    def catalogued(encounter_ids: Collection[str]) -> Mapping[str, RetentionDecision]:
        asked.append(set(encounter_ids))
        return {"old": earlier, "new": earlier, "short": RetentionDecision("x", OLD)}

    same = _bundle("same", OLD, "s1")
    batch = [
        _bundle("old", OLD, "o2"),
        _bundle("new", RECENT, "n2"),
        _bundle("short", RECENT, "t2"),
        same,
    ]
    versions = {"old": ["o1"], "new": ["n1"], "short": ["t1"], "same": [same.sha256]}
    found = sort_known(batch, versions, TenYears(), NOW, "x", catalogued)
    assert asked == [{"old", "new", "short"}]  # the changed catalogued records only, once
    assert found.ended == []
    old, new, short = found.changed
    assert decide(TenYears(), old) == earlier  # the worker's classifier knows no catalog
    assert decide(TenYears(), new) == earlier
    assert decide(TenYears(), short) == TenYears().decide(short)  # an earlier shorter one: class


def test_the_longer_of_a_register_extension_and_a_catalogued_lock_wins() -> None:
    catalogued = RetentionDecision("death", datetime(2045, 1, 1, tzinfo=UTC))

    def locks(encounter_ids: Collection[str]) -> Mapping[str, RetentionDecision]:
        return {"e": catalogued}

    longer = RetentionDecision("y", datetime(2050, 1, 1, tzinfo=UTC))
    for kept, expected in ((KEPT, catalogued), (longer, longer)):
        classifier = TenYears({"e": kept})
        found = sort_known([_bundle("e", OLD, "v2")], {"e": ["v1"]}, classifier, NOW, "x", locks)
        [bundle] = found.changed
        assert decide(TenYears(), bundle) == expected

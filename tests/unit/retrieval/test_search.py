"""Search over a generated catalog: each query type against a brute-force scan of the catalog,
what each role sees, inspector grants, holds, upgrades, verification outcomes, and the audit."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from archive.audit import AuditLog
from archive.core.errors import ArchiveError
from archive.seal import LocalKeyring
from bench.bench_search import CLASSES, FACILITIES, generate_catalog
from infra.settings import AppSettings as Settings
from infra.settings import load_app_settings as load_settings
from retention.register import Register
from retrieval import (
    AccessDeniedError,
    AccessRegister,
    AuthenticationError,
    Principal,
    Query,
    Retrieval,
    Role,
    ScryptParams,
    SearchIndex,
    TokenService,
    UserStore,
    access_dir,
)
from retrieval.index_seal import index_key
from tests.support.memstore import MemoryStore
from verification.config import HoldSet
from verification.evidence import Environment

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
OFFICER = Principal("ro.binh", Role.RECORDS_OFFICER)
INSPECTOR = Principal("insp.an", Role.INSPECTOR)
AUDITOR = Principal("aud.chi", Role.AUDITOR)
TZ = ZoneInfo("Asia/Ho_Chi_Minh")


@dataclass
class World:
    retrieval: Retrieval
    rows: list[dict[str, Any]]  # the catalog, for brute-force answers
    patients: list[str]
    settings: Settings


def _no_env(holds: HoldSet) -> Environment:
    raise AssertionError("search never opens documents")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("search")
    settings = load_settings(data_dir=tmp)
    store = MemoryStore()
    keyring = LocalKeyring.create(settings.keyring_dir, kek_id="emr-archive-kek")
    catalog, patients = generate_catalog(
        settings.catalog_dir, rows=3000, keyring=keyring, store=store
    )
    users = UserStore(access_dir(settings) / "users.json", params=ScryptParams(n=2**10))
    for p in (OFFICER, INSPECTOR, AUDITOR):
        users.add(p.username, p.role, PASSWORD)
    retrieval = Retrieval(
        settings=settings,
        store=store,
        catalog=catalog,
        index=SearchIndex.open(tmp / "index", seal_key=index_key(keyring.chain_key())),
        register=Register.for_settings(settings, store),
        access=AccessRegister.for_settings(settings, store),
        users=users,
        tokens=TokenService(b"s" * 32),
        audit=AuditLog.for_settings(settings, store),
        keyring=keyring,
        env_factory=_no_env,
    )
    yield World(retrieval, catalog.rows().to_pylist(), patients, settings)
    retrieval.index.close()


def _ids(result: Any) -> set[str]:
    return {h.encounter_id for h in result.hits}


def test_by_encounter(world: World) -> None:
    row = world.rows[1234]
    result = world.retrieval.search(OFFICER, Query(encounter_id=row["encounter_id"]), now=NOW)
    (hit,) = result.hits
    assert hit.encounter_id == row["encounter_id"]
    assert hit.facility == row["facility"]
    assert hit.discharged_at == row["discharged_at"]
    assert hit.retain_until == row["retain_until"]
    assert hit.retention_class == row["retention_class"]
    assert hit.patient_pseudonym == row["patient_pseudonym"]  # a records officer sees it
    assert hit.on_hold is False
    assert hit.verification is None  # never verified yet
    assert not world.retrieval.search(OFFICER, Query(encounter_id="NOPE"), now=NOW).hits


def test_by_patient_is_pseudonymised_at_query_time(world: World) -> None:
    patient = world.patients[17]
    pseudonym = world.retrieval.pseudonym(patient)
    expected = {r["encounter_id"] for r in world.rows if r["patient_pseudonym"] == pseudonym}
    result = world.retrieval.search(OFFICER, Query(patient_pseudonym=pseudonym), now=NOW)
    assert _ids(result) == expected


def test_by_facility_and_discharge_range(world: World) -> None:
    first, last = date(2018, 1, 1), date(2018, 12, 31)
    query = Query(facility=FACILITIES[1], discharged_from=first, discharged_to=last)
    expected = {
        r["encounter_id"]
        for r in world.rows
        if r["facility"] == FACILITIES[1]
        and first <= r["discharged_at"].astimezone(TZ).date() <= last
    }
    assert expected
    assert _ids(world.retrieval.search(OFFICER, query, now=NOW)) == expected


def test_by_retention_class(world: World) -> None:
    last = date(2017, 12, 31)
    wanted = {
        r["encounter_id"]
        for r in world.rows
        if r["retention_class"] == CLASSES[3] and r["discharged_at"].astimezone(TZ).date() <= last
    }
    query = Query(retention_class=CLASSES[3], discharged_to=last)
    result = world.retrieval.search(OFFICER, query, now=NOW)
    assert (len(result.hits), result.truncated) == (len(wanted), False)
    assert _ids(result) == wanted


def test_large_results_are_cut_and_say_so(world: World) -> None:
    result = world.retrieval.search(OFFICER, Query(facility=FACILITIES[0]), now=NOW)
    assert result.truncated
    assert len(result.hits) == 500
    dates = [h.discharged_at for h in result.hits]
    assert dates == sorted(dates)  # the oldest first, reproducibly


def test_an_empty_query_is_refused(world: World) -> None:
    with pytest.raises(Exception, match="search by"):
        world.retrieval.search(OFFICER, Query(), now=NOW)


def test_inspector_without_grant_is_refused_and_audited(world: World) -> None:
    stranger = Principal("insp.nogrant", Role.INSPECTOR)
    eid = world.rows[5]["encounter_id"]
    with pytest.raises(AccessDeniedError, match="no active grant"):
        world.retrieval.search(stranger, Query(encounter_id=eid), now=NOW)
    (event,) = world.retrieval.audit.show(actor="insp.nogrant")
    assert (event.action, event.outcome, event.role) == ("retrieval.search", "failure", "inspector")
    assert ("encounter", eid) in event.entities
    assert "AccessDeniedError" in (event.reason or "")


def test_inspector_sees_only_what_the_grant_covers(world: World) -> None:
    r = world.retrieval
    grant = r.issue_grant(
        OFFICER,
        now=NOW,
        inspector="insp.an",
        case_ref="QD-12/2026",
        facility=FACILITIES[0],
        valid_from=NOW,
        valid_until=NOW + timedelta(days=3),
    )
    inside = next(x for x in world.rows if x["facility"] == FACILITIES[0])
    outside = next(x for x in world.rows if x["facility"] == FACILITIES[2])
    (hit,) = r.search(INSPECTOR, Query(encounter_id=inside["encounter_id"]), now=NOW).hits
    assert hit.patient_pseudonym is None  # an inspector does not see the pseudonym
    assert not r.search(INSPECTOR, Query(encounter_id=outside["encounter_id"]), now=NOW).hits
    by_class = r.search(INSPECTOR, Query(retention_class=CLASSES[0]), now=NOW)
    assert {h.facility for h in by_class.hits} == {FACILITIES[0]}
    with pytest.raises(AccessDeniedError, match="covers"):
        r.view(INSPECTOR, outside["encounter_id"], now=NOW)
    assert (
        r.view(INSPECTOR, inside["encounter_id"], now=NOW)[0].encounter_id == inside["encounter_id"]
    )
    later = NOW + timedelta(days=3)  # the grant expired by itself
    with pytest.raises(AccessDeniedError):
        r.search(INSPECTOR, Query(encounter_id=inside["encounter_id"]), now=later)
    r.revoke_grant(OFFICER, grant.grant_id, reason="inspection closed", now=NOW)
    with pytest.raises(AccessDeniedError):
        r.search(INSPECTOR, Query(encounter_id=inside["encounter_id"]), now=NOW)
    actions = [(e.action, e.outcome) for e in r.audit.show(actor="insp.an")]
    assert ("retrieval.view", "failure") in actions
    assert ("retrieval.search", "success") in actions
    granted = r.audit.show(actor="ro.binh", action="retrieval.grant")
    assert [e.action for e in granted] == ["retrieval.grant.issue", "retrieval.grant.revoke"]


@pytest.mark.parametrize("principal", [INSPECTOR, AUDITOR])
def test_only_records_officers_issue_grants(world: World, principal: Principal) -> None:
    with pytest.raises(AccessDeniedError):
        world.retrieval.issue_grant(
            principal,
            now=NOW,
            inspector="insp.an",
            case_ref="x",
            facility="79001",
            valid_from=NOW,
            valid_until=NOW + timedelta(days=1),
        )


def test_auditor_reads_the_log_but_not_records(world: World) -> None:
    with pytest.raises(AccessDeniedError):
        world.retrieval.search(AUDITOR, Query(encounter_id="ENC000000001"), now=NOW)
    assert world.retrieval.audit_events(AUDITOR, now=NOW)
    with pytest.raises(AccessDeniedError):
        world.retrieval.audit_events(INSPECTOR, now=NOW)


def test_hold_upgrade_and_verification_outcome_are_shown(world: World) -> None:
    from verification.log import write_log
    from verification.results import CheckResult, RecordResult

    row = world.rows[42]
    eid = row["encounter_id"]
    until = row["retain_until"] + timedelta(days=3650)
    world.retrieval.register.append(
        [
            {
                "type": "hold.placed",
                "hold_id": "h1",
                "case_ref": "c",
                "reason": "r",
                "by": "ro",
                "at": NOW.isoformat(),
                "scope": {},
                "versions": [[row["object_key"], row["version_id"]]],
                "encounters": [eid],
            },
            {
                "type": "lock.extended",
                "encounter_id": eid,
                "new_class": "death-20y",
                "new_until": until.isoformat(),
            },
        ],
        now=NOW,
    )
    checks = (CheckResult.passed("object", "ok"),)
    result = RecordResult(
        eid,
        row["patient_pseudonym"],
        row["object_key"],
        row["version_id"],
        "2026-11-22",
        checks,
        None,
        0.1,
    )
    write_log(
        world.settings.data_dir / "verification",
        [result],
        run_id="verify-1",
        mode="full",
        verified_at=NOW,
    )
    (hit,) = world.retrieval.search(OFFICER, Query(encounter_id=eid), now=NOW).hits
    assert hit.on_hold
    assert (hit.retention_class, hit.retain_until) == ("death-20y", until)
    assert hit.verification is not None
    assert (hit.verification.status, hit.verification.run_id) == ("passed", "verify-1")


def test_login_logout_and_replay(world: World) -> None:
    r = world.retrieval
    session = r.login("insp.an", PASSWORD, now=NOW)
    assert r.authenticate(session.token, now=NOW) == session.principal
    r.logout(session.principal, now=NOW)
    with pytest.raises(AuthenticationError, match="logged out"):
        r.authenticate(session.token, now=NOW)
    with pytest.raises(AuthenticationError):
        r.login("insp.an", "wrong password here", now=NOW)
    events = [(e.action, e.outcome) for e in r.audit.show(action="auth")]
    assert ("auth.login", "success") in events
    assert ("auth.logout", "success") in events
    assert ("auth.token", "failure") in events
    assert ("auth.login", "failure") in events


def test_index_rebuilds_when_the_catalog_is_not_the_indexed_one(tmp_path: Path) -> None:
    keyring = LocalKeyring.create(tmp_path / "keys", kek_id="emr-archive-kek")
    one, _ = generate_catalog(
        tmp_path / "one", rows=50, keyring=keyring, store=MemoryStore(), seed=1
    )
    two, _ = generate_catalog(
        tmp_path / "two", rows=20, keyring=keyring, store=MemoryStore(), seed=2
    )
    index = SearchIndex.open(tmp_path, seal_key=index_key(keyring.chain_key()))
    assert index.sync(one) == 50
    assert index.sync(one) == 0  # incremental: nothing new
    assert index.sync(two) == 20  # another chain: dropped and rebuilt
    assert index.count() == 20
    index.close()


def test_a_query_mixing_kinds_is_refused() -> None:
    with pytest.raises(ArchiveError, match="one of"):
        Query(encounter_id="E1", facility="79001")

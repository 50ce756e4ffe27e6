"""Legal holds on the real stack: every version is held, patients appear only as pseudonyms, and
releasing one case never frees a version another case still holds."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from archive.store import S3ObjectStore
from infra.settings import AppSettings as Settings
from retention.errors import RetentionError
from retention.holds import (
    HoldResult,
    HoldScope,
    confirm_release,
    list_holds,
    place_hold,
    request_release,
)
from retention.parts import RetentionParts
from retention.people import Actor
from retention.register import REGISTER_PREFIX, register_dir
from tests.support.retention import Rec, add_version, archive_records, lock_of

pytestmark = pytest.mark.integration

PATIENT = "BN-0001-NGUYEN"
LAN, THU = Actor("lan", "records-officer"), Actor("thu", "records-officer")


def _records(settings: Settings) -> list[str]:
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    rows = archive_records(
        settings,
        [
            Rec("E-A1", PATIENT, "ordinary", datetime(2026, 3, 1, 2, tzinfo=UTC), until),
            Rec("E-A2", PATIENT, "mental", datetime(2026, 5, 1, 2, tzinfo=UTC), until),
            Rec(
                "E-B1", "BN-0002", "ordinary", datetime(2026, 3, 31, 20, tzinfo=UTC), until, "01002"
            ),
            Rec("E-B2", "BN-0003", "ordinary", datetime(2026, 4, 2, 2, tzinfo=UTC), until, "01002"),
        ],
    )
    add_version(S3ObjectStore.from_settings(settings), rows[0].object_key, until)
    return [r.object_key for r in rows]


def _place(parts: RetentionParts, scope: HoldScope, case: str) -> str:
    return place_hold(
        scope,
        case_ref=case,
        reason="court order",
        by=LAN,
        catalog_rows=parts.catalog.rows(),
        register=parts.register,
        audit=parts.audit,
        now=datetime.now(UTC),
        tz=parts.tz,
    ).hold_id


def _release(parts: RetentionParts, hold_id: str) -> HoldResult:
    """Two people: lan asks, thu confirms."""
    now = datetime.now(UTC)
    request_release(
        hold_id, by=LAN, reason="case closed", register=parts.register, audit=parts.audit, now=now
    )
    return confirm_release(hold_id, by=THU, register=parts.register, audit=parts.audit, now=now)


def test_a_patient_hold_covers_every_version_and_keeps_only_the_pseudonym(
    settings: Settings,
) -> None:
    keys = _records(settings)
    parts = RetentionParts.open(settings)
    scope = HoldScope.for_patient(PATIENT, parts.keyring())
    hold_id = _place(parts, scope, "TA-7/2026")
    a1 = lock_of(parts.store, keys[0])
    assert len(a1) == 2
    assert all(held for _, held in a1)
    assert all(held for _, held in lock_of(parts.store, keys[1]))
    assert not any(held for _, held in lock_of(parts.store, keys[2]))
    [hold] = list_holds(parts.register)
    assert (hold.hold_id, hold.case_ref, hold.placed_by) == (hold_id, "TA-7/2026", "lan")
    assert hold.encounters == {"E-A1", "E-A2"}
    for path in register_dir(settings).rglob("*.jsonl"):
        assert PATIENT.encode() not in path.read_bytes()
    events = list(parts.store.list_versions(REGISTER_PREFIX))
    assert events
    for version in events:  # sealed; and even opened, no patient id
        raw = parts.store.get(version.key, version_id=version.version_id)
        assert b"TA-7/2026" not in raw
        opened = parts.register.meta_store.get(version.key, version_id=version.version_id)
        assert PATIENT.encode() not in opened
        assert b"TA-7/2026" in opened
    [event] = parts.audit.show(action="hold.add")
    assert ("patient", scope.pseudonym) in event.entities
    assert ("case", "TA-7/2026") in event.entities


def test_releasing_one_case_keeps_versions_another_case_holds(settings: Settings) -> None:
    keys = _records(settings)
    parts = RetentionParts.open(settings)
    first = _place(parts, HoldScope(encounter_ids=("E-A1", "E-A2")), "case-1")
    second = _place(parts, HoldScope(encounter_ids=("E-A1",)), "case-2")
    result = _release(parts, first)
    assert (result.versions, result.kept) == (1, 2)  # E-A2 cleared; both E-A1 versions kept
    assert all(held for _, held in lock_of(parts.store, keys[0]))
    assert not any(held for _, held in lock_of(parts.store, keys[1]))
    _release(parts, second)
    assert not any(held for _, held in lock_of(parts.store, keys[0]))
    assert list_holds(parts.register) == []
    with pytest.raises(RetentionError, match="no active hold"):
        _release(parts, second)
    done = [e.action for e in parts.audit.show(action="hold") if e.outcome == "success"]
    assert done == ["hold.add"] * 2 + ["hold.remove-request", "hold.remove"] * 2


def test_a_facility_hold_selects_by_local_discharge_date(settings: Settings) -> None:
    keys = _records(settings)
    parts = RetentionParts.open(settings)
    # E-B1 left at 20:00 UTC on 31 March: 1 April in Hanoi, so inside an April range.
    scope = HoldScope(
        facility="01002", discharged_from=date(2026, 4, 1), discharged_to=date(2026, 4, 1)
    )
    _place(parts, scope, "inspection-04")
    assert all(held for _, held in lock_of(parts.store, keys[2]))
    assert not any(held for _, held in lock_of(parts.store, keys[3]))


def test_a_hold_needs_a_selection_reason_and_matches(settings: Settings) -> None:
    _records(settings)
    parts = RetentionParts.open(settings)
    with pytest.raises(RetentionError, match="exactly one"):
        HoldScope(encounter_ids=("E-A1",), pseudonym="p1_" + "0" * 64)
    with pytest.raises(RetentionError, match="no archived record"):
        _place(parts, HoldScope(encounter_ids=("E-NONE",)), "c")
    with pytest.raises(RetentionError, match="reason"):
        place_hold(
            HoldScope(encounter_ids=("E-A1",)),
            case_ref="c",
            reason=" ",
            by=LAN,
            catalog_rows=parts.catalog.rows(),
            register=parts.register,
            audit=parts.audit,
            now=datetime.now(UTC),
            tz=parts.tz,
        )

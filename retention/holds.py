"""Legal holds: keep records (every version of their objects) from deletion while a case runs.

A hold selects records from the catalog by encounter ids, by patient (the patient id is turned
into its pseudonym at once and only the pseudonym is kept), or by facility and discharge-date
range (local dates, inclusive), and sets the S3 legal hold on every version of every selected
object. The register records who placed it, when, why (reason and case reference) and exactly
which versions it holds; an audit event follows.

Releasing a hold takes two people (:mod:`retention.people`): one requests it
(:func:`request_release`, nothing changes yet), a different person confirms
(:func:`confirm_release`), and only then is the flag cleared; otherwise one officer could lift
a hold, wait for the sweep and destroy. Each refusal is audited.

S3 has one legal-hold flag per version, shared by every case. Releasing one case therefore
clears the flag only on versions no other active hold needs. The store is changed before the
register: a crash between the two leaves a version held with no record of why (safe: it cannot
be destroyed), never a recorded hold that the store does not enforce.

A hold covers the records archived when it is placed; records of the same patient or range
archived later are not added automatically (place another hold, or add the nightly check).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from archive.audit import AuditEvent, AuditLog
from archive.seal import Pseudonymizer
from retention.errors import RetentionError
from retention.people import Actor, refuse
from retention.register import Hold, Register, Version, live_rows, versions_of


@dataclass(frozen=True, slots=True, kw_only=True)
class HoldScope:
    """What a hold covers: exactly one of encounter ids, a patient pseudonym, or a facility with
    a discharge-date range."""

    encounter_ids: tuple[str, ...] = ()
    pseudonym: str | None = None
    facility: str | None = None
    discharged_from: date | None = None
    discharged_to: date | None = None

    def __post_init__(self) -> None:
        ranged = self.facility is not None
        if ranged and (self.discharged_from is None or self.discharged_to is None):
            raise RetentionError("a facility hold needs --from and --to discharge dates")
        if sum((bool(self.encounter_ids), self.pseudonym is not None, ranged)) != 1:
            raise RetentionError(
                "a hold selects by exactly one of: encounter ids, a patient, or a facility "
                "with a discharge-date range"
            )

    @classmethod
    def for_patient(cls, patient_id: str, keys: Pseudonymizer) -> HoldScope:
        """Pseudonymise now: the patient id goes no further than this call."""
        return cls(pseudonym=keys.pseudonym(patient_id))

    def selects(self, row: dict[str, Any], tz: ZoneInfo) -> bool:
        if self.encounter_ids:
            return row["encounter_id"] in self.encounter_ids
        if self.pseudonym is not None:
            return bool(row["patient_pseudonym"] == self.pseudonym)
        day = row["discharged_at"].astimezone(tz).date()
        start, end = self.discharged_from, self.discharged_to
        assert start is not None
        assert end is not None
        return bool(row["facility"] == self.facility and start <= day <= end)

    def to_json(self) -> dict[str, Any]:
        if self.encounter_ids:
            return {"encounter_ids": list(self.encounter_ids)}
        if self.pseudonym is not None:
            return {"patient_pseudonym": self.pseudonym}
        return {
            "facility": self.facility,
            "discharged_from": str(self.discharged_from),
            "discharged_to": str(self.discharged_to),
        }


@dataclass(frozen=True, slots=True)
class HoldResult:
    hold_id: str
    encounters: int
    versions: int  # versions whose legal hold this call set or cleared
    kept: int = 0  # on release: versions left held because another case needs them


def place_hold(
    scope: HoldScope,
    *,
    case_ref: str,
    reason: str,
    by: Actor,
    catalog_rows: Any,
    register: Register,
    audit: AuditLog,
    now: datetime,
    tz: str,
) -> HoldResult:
    """Select the records, hold every version of each, then record and audit the hold."""
    _require_text(case_ref=case_ref, reason=reason, by=by.name)
    zone = ZoneInfo(tz)
    rows = [r for r in live_rows(catalog_rows, register) if scope.selects(r, zone)]
    if not rows:
        raise RetentionError("no archived record matches this hold; check the selection")
    store = register.store
    versions: list[Version] = []
    for row in rows:
        for version_id in versions_of(store, row["object_key"]):
            store.set_legal_hold(row["object_key"], version_id=version_id, on=True)
            versions.append((row["object_key"], version_id))
    hold_id = f"hold-{now:%Y%m%d}-{secrets.token_hex(4)}"
    encounters = sorted({r["encounter_id"] for r in rows})
    register.append(
        [
            {
                "type": "hold.placed",
                "hold_id": hold_id,
                "case_ref": case_ref,
                "reason": reason,
                "by": by.name.strip(),
                "role": by.role,
                "at": now.isoformat(),
                "scope": scope.to_json(),
                "encounters": encounters,
                "versions": [list(v) for v in versions],
            }
        ],
        now=now,
    )
    patient = (("patient", scope.pseudonym),) if scope.pseudonym else ()
    _audit(
        audit, "hold.add", by, now, hold_id, case_ref, reason, encounters, len(versions), patient
    )
    return HoldResult(hold_id, len(encounters), len(versions))


def request_release(
    hold_id: str, *, by: Actor, reason: str, register: Register, audit: AuditLog, now: datetime
) -> Hold:
    """Ask for a hold to be released; nothing is cleared until another person confirms."""
    hold = _active_or_refuse(hold_id, by, "hold.remove-request", register, audit, now)
    pending = register.release_requests().get(hold_id)
    if pending is not None:
        raise refuse(
            audit,
            by,
            "hold.remove-request",
            now,
            f"release of {hold_id} was already requested by {pending['by']}: a different person "
            f"confirms it (`emr-archive hold confirm-release {hold_id}`)",
            entities=(("hold", hold_id),),
        )
    _require_text(reason=reason, by=by.name)
    register.append(
        [
            {
                "type": "hold.release_requested",
                "hold_id": hold_id,
                "by": by.name.strip(),
                "role": by.role,
                "at": now.isoformat(),
                "reason": reason,
            }
        ],
        now=now,
    )
    encounters = sorted(hold.encounters)
    _audit(audit, "hold.remove-request", by, now, hold_id, hold.case_ref, reason, encounters, 0)
    return hold


def confirm_release(
    hold_id: str, *, by: Actor, register: Register, audit: AuditLog, now: datetime
) -> HoldResult:
    """The second person: clear the legal hold on this hold's versions that no other active hold
    needs. Refused (and audited) without a request, or from the person who requested it."""
    hold = _active_or_refuse(hold_id, by, "hold.remove", register, audit, now)
    request = register.release_requests().get(hold_id)
    problem = None
    if request is None:
        problem = f"nobody has requested the release of {hold_id}: `emr-archive hold remove` first"
    elif not by.is_person or by.is_(request["by"]):
        problem = f"{request['by']} requested this release: a different person must confirm it"
    if problem is not None:
        raise refuse(audit, by, "hold.remove", now, problem, entities=(("hold", hold_id),))
    assert request is not None
    others = {v for v, ids in register.held_versions().items() if ids - {hold_id}}
    cleared = sorted(hold.versions - others)
    for key, version_id in cleared:
        register.store.set_legal_hold(key, version_id=version_id, on=False)
    kept = len(hold.versions & others)
    register.append(
        [
            {
                "type": "hold.released",
                "hold_id": hold_id,
                "requested_by": request["by"],
                "by": by.name.strip(),
                "role": by.role,
                "at": now.isoformat(),
                "reason": request["reason"],
                "cleared": [list(v) for v in cleared],
            }
        ],
        now=now,
    )
    encounters = sorted(hold.encounters)
    reason = request["reason"]
    _audit(audit, "hold.remove", by, now, hold_id, hold.case_ref, reason, encounters, len(cleared))
    return HoldResult(hold_id, len(encounters), len(cleared), kept)


def _active_or_refuse(
    hold_id: str, by: Actor, action: str, register: Register, audit: AuditLog, now: datetime
) -> Hold:
    hold = register.active_holds().get(hold_id)
    if hold is None:
        problem = f"no active hold {hold_id}: see `emr-archive hold list`"
        raise refuse(audit, by, action, now, problem, entities=(("hold", hold_id),))
    return hold


def list_holds(register: Register) -> list[Hold]:
    return sorted(register.active_holds().values(), key=lambda h: h.placed_at)


def _audit(
    audit: AuditLog,
    action: str,
    by: Actor,
    now: datetime,
    hold_id: str,
    case_ref: str,
    reason: str,
    encounters: list[str],
    versions: int,
    extra: tuple[tuple[str, str], ...] = (),
) -> None:
    entities = (("hold", hold_id), ("case", case_ref), *extra)
    entities += tuple(("encounter", e) for e in encounters)
    audit.append(
        AuditEvent(
            actor=by.name.strip(),
            role=by.role,
            action=action,
            recorded=now,
            entities=entities,
            reason=reason,
            detail={"encounters": len(encounters), "versions": versions},
        )
    )
    audit.flush(now=now)


def _require_text(**values: str) -> None:
    for name, value in values.items():
        if not value.strip():
            raise RetentionError(f"a hold needs a non-empty {name.replace('_', ' ')}")

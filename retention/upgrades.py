"""Upgrades: extend locks when a record's class rises (new facts) or a policy period grows.

Two causes, one rule. A new policy file changes the period of the classes records already have;
new facts (a death recorded after archiving) can put a record in a longer class. For each live
record the new class is the **longest** of its current class (as the new policy defines it) and
what the new facts classify to: a class rises, never falls, on new data. Rules are re-run only on
records given facts: the catalog keeps classes and dates, not codes (they are health data), so a
policy whose *rules* moved needs the facts again (``--facts`` or ``--export``).

:func:`plan_upgrade` reads the catalog and the register only; it touches nothing.
:func:`apply_upgrade` extends the COMPLIANCE lock of every version (after reading each version's
current lock: the store is the authority) and records each extension in the register and the
audit log. A shorter new date is reported as "shorter rule, lock unchanged" and never applied.

Each version's RFC 4998 evidence record is extended with it: it is the record's proof and must
last as long (verification's ``evidence`` check fails ``evidence.lock`` otherwise). It is
checked even when the version's own lock is already long enough, so a rerun after a crash
between the two extensions completes the second. A version whose evidence is still pending (a
TSA outage) has nothing to extend yet: the nightly run that writes it takes the record's own
lock when longer than the date promised before (evidence_stage). Both sites: ReplicatedStore.
The renewals still to come are covered by a lock floor on the record's newest token
(:mod:`archive.pipeline.evidence_floor`), which every later renewal reads and passes on.
A run's own evidence and amendments are written under the run lock, which the command holds
while it plans and applies (:mod:`retention.exclusion`), so none is written to an older date
between the two.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from archive.audit import AuditEvent, AuditLog
from archive.pipeline.evidence_current import current_evidence
from archive.pipeline.evidence_floor import newest_token, raise_floor
from archive.sources import MANIFEST_NAME, EncounterBundle, Window, collect, parse_datetime
from archive.store import ObjectStore, SealedStore, evidence_key
from retention.errors import PolicyError, RetentionError
from retention.facts import RecordFacts
from retention.policy import (
    Classification,
    LockAction,
    RetentionPolicy,
    classification_for,
    classify,
    dossier_class,
    retain_until,
)
from retention.register import Register, live_rows, versions_of

FactsUpdate = Mapping[str, Any]  # RecordFacts fields except discharged_at (the catalog's)
_LIST_FIELDS = ("icd10_codes", "procedure_codes")


@dataclass(frozen=True, slots=True, kw_only=True)
class PlannedChange:
    encounter_id: str
    object_key: str
    old_class: str
    new_class: str
    current_until: datetime
    new_until: datetime
    action: LockAction
    cause: str  # "policy" or "facts"


@dataclass(frozen=True, slots=True)
class ClassSummary:
    class_id: str
    records: int
    extend: int
    unchanged: int
    keep_longer: int
    earliest_new: datetime | None  # of the extensions
    latest_new: datetime | None


@dataclass(frozen=True, slots=True)
class UpgradePlan:
    policy_ref: str
    changes: tuple[PlannedChange, ...]
    skipped: tuple[str, ...]  # why records could not be planned (no PHI: class ids only)

    @property
    def extensions(self) -> tuple[PlannedChange, ...]:
        return tuple(c for c in self.changes if c.action is LockAction.EXTEND)

    def by_class(self) -> list[ClassSummary]:
        """Counts per new class, with the earliest and latest extended date."""
        out = []
        for class_id in sorted({c.new_class for c in self.changes}):
            mine = [c for c in self.changes if c.new_class == class_id]
            ext = sorted(c.new_until for c in mine if c.action is LockAction.EXTEND)
            count = {a: sum(c.action is a for c in mine) for a in LockAction}
            out.append(
                ClassSummary(
                    class_id,
                    len(mine),
                    count[LockAction.EXTEND],
                    count[LockAction.UNCHANGED],
                    count[LockAction.KEEP_LONGER],
                    ext[0] if ext else None,
                    ext[-1] if ext else None,
                )
            )
        return out


def load_facts_file(path: Path) -> dict[str, FactsUpdate]:
    """``{"E123": {"deceased": true}, ...}``: new facts by encounter id (codes as lists)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise RetentionError(f"cannot read facts file {path}: {e}") from e
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise RetentionError(f"{path}: expected an object of encounter id -> facts object")
    known = set(RecordFacts.__dataclass_fields__) - {"discharged_at"}
    for encounter_id, facts in data.items():
        unknown = set(facts) - known
        if unknown:
            raise RetentionError(
                f"{path}: encounter {encounter_id} has unknown fact(s) {sorted(unknown)}; "
                f"known: {sorted(known)}"
            )
    return data


def facts_from_export(export_dir: Path) -> dict[str, FactsUpdate]:
    """Facts of every encounter in a FHIR Bulk Data export (the collector's view of it)."""
    window = Window(start=datetime(1900, 1, 1, tzinfo=UTC), end=_taken_at(export_dir))
    out: dict[str, FactsUpdate] = {}
    for item in collect(export_dir, window=window):
        if isinstance(item, EncounterBundle):
            facts = RecordFacts.from_bundle(item)
            out[item.encounter_id] = {
                name: getattr(facts, name)
                for name in RecordFacts.__dataclass_fields__
                if name != "discharged_at"
            }
    return out


def _taken_at(export_dir: Path) -> datetime:
    """The export's transactionTime: the collector refuses a window ending after it (an export
    cannot vouch for encounters finished after it was taken)."""
    manifest = export_dir / MANIFEST_NAME
    try:
        doc = json.loads(manifest.read_bytes()) if manifest.is_file() else {}
    except (OSError, ValueError) as e:
        raise RetentionError(f"cannot read {manifest}: {e}") from e
    taken = parse_datetime(
        doc.get("transactionTime") if isinstance(doc, dict) else None, date_tz=UTC
    )
    return taken or datetime.now(UTC)


def plan_upgrade(
    catalog_rows: Any,
    register: Register,
    *,
    policy: RetentionPolicy,
    facts: Mapping[str, FactsUpdate],
    tz: str,
) -> UpgradePlan:
    """What ``policy`` and ``facts`` would do to every live record's lock; touches nothing."""
    changes, skipped = [], []
    for row in live_rows(catalog_rows, register):
        try:
            changes.append(_plan_row(row, policy, facts.get(row["encounter_id"]), tz))
        except PolicyError:
            skipped.append(f"class {row['retention_class']} is not in {policy.ref}: lock unchanged")
    return UpgradePlan(policy.ref, tuple(changes), tuple(sorted(set(skipped))))


def _plan_row(
    row: dict[str, Any], policy: RetentionPolicy, update: FactsUpdate | None, tz: str
) -> PlannedChange:
    candidates: list[Classification] = [classification_for(policy, row["retention_class"])]
    if update is not None:
        candidates.append(classify(_facts(row, update), policy))
    new = dossier_class(candidates)
    new_until = retain_until(new, discharged_at=row["discharged_at"], tz=tz)
    current = row["retain_until"]
    action = LockAction.between(new_until, current)
    return PlannedChange(
        encounter_id=row["encounter_id"],
        object_key=row["object_key"],
        old_class=row["retention_class"],
        new_class=new.class_id,
        current_until=current,
        new_until=new_until,
        action=action,
        cause="facts" if new.class_id != candidates[0].class_id else "policy",
    )


def _facts(row: dict[str, Any], update: FactsUpdate) -> RecordFacts:
    values: dict[str, Any] = {k: tuple(v) if k in _LIST_FIELDS else v for k, v in update.items()}
    return RecordFacts(discharged_at=row["discharged_at"], **values)


@dataclass(frozen=True, slots=True)
class ApplyResult:
    extended_records: int
    extended_versions: int
    already_later: int  # versions whose stored lock was already at or past the new date
    extended_evidence: int = 0  # evidence record objects extended with their versions
    evidence_pending: int = 0  # versions with no evidence record yet (its run locks it later)


def apply_upgrade(
    plan: UpgradePlan, *, register: Register, audit: AuditLog, by: str, now: datetime
) -> ApplyResult:
    """Extend every version of each EXTEND record, then record and audit what was done."""
    events, versions, later, evidence, pending = [], 0, 0, 0, 0
    for change in plan.extensions:
        done, skipped, ev = _extend(register, change)
        versions, later = versions + len(done), later + skipped
        evidence, pending = evidence + ev.extended, pending + ev.pending
        events.append(
            {
                "type": "lock.extended",
                "encounter_id": change.encounter_id,
                "object_key": change.object_key,
                "versions": done,
                "old_class": change.old_class,
                "new_class": change.new_class,
                "old_until": change.current_until.isoformat(),
                "new_until": change.new_until.isoformat(),
                "policy": plan.policy_ref,
                "cause": change.cause,
                "evidence_extended": ev.extended,
                "evidence_pending": ev.pending,
                "by": by,
                "at": now.isoformat(),
            }
        )
    register.append(events, now=now)
    _audit(audit, plan, by, now, len(events), versions)
    return ApplyResult(len(events), versions, later, evidence, pending)


@dataclass
class _Evidence:
    extended: int = 0
    pending: int = 0


def _extend(register: Register, change: PlannedChange) -> tuple[list[str], int, _Evidence]:
    store, done, later, evidence = register.store, [], 0, _Evidence()
    for version_id in versions_of(store, change.object_key):
        _extend_evidence(register, change, version_id, evidence)
        if _extend_one(store, change.object_key, version_id, change.new_until):
            done.append(version_id)
        else:
            later += 1
    return done, later, evidence


def _extend_evidence(
    register: Register, change: PlannedChange, version_id: str, evidence: _Evidence
) -> None:
    """The version's evidence record objects, whatever the version's own lock: a rerun after
    a crash between the two extensions (the register not yet written, so planned again) comes
    back here and completes it.

    Every part the current proof is built from: the initial record and each renewal (timestamp
    renewals are shared by whole trees, so extending one for this record keeps it for all; a
    lock is only ever lengthened). Walking the renewals opens the parts (they are sealed), so a
    register without a sealing store extends the initial record alone."""
    store, meta = register.store, register.meta_store
    if isinstance(meta, SealedStore):
        current = current_evidence(meta, object_key=change.object_key, version_id=version_id)
        if current is None:
            evidence.pending += 1
            return
        # The floor first, then the parts, walked again after it: a renewal that wrote the next
        # object before the floor was raised is found by the walk; one that writes it after
        # reads the floor. If the newest token moved meanwhile, its floor is raised too.
        floored: set[str] = set()
        while (token := newest_token(current)) is not None and token not in floored:
            raise_floor(meta, token, change.new_until, extend=store)
            floored.add(token)
            again = current_evidence(meta, object_key=change.object_key, version_id=version_id)
            current = again if again is not None else current
        for part in current.parts:
            evidence.extended += _extend_one(store, part.key, part.version_id, change.new_until)
        return
    key = evidence_key(object_key=change.object_key, version_id=version_id)
    found = versions_of(store, key)
    if not found:
        evidence.pending += 1
    for evidence_version in found:
        evidence.extended += _extend_one(store, key, evidence_version, change.new_until)


def _extend_one(store: ObjectStore, key: str, version_id: str, until: datetime) -> bool:
    """Extend one version's COMPLIANCE lock to ``until`` unless it already reaches it."""
    current = store.head(key, version_id=version_id).lock.retain_until
    if current is not None and current >= until:
        return False
    store.extend_retention(key, version_id=version_id, retain_until=until)
    return True


def _audit(
    audit: AuditLog, plan: UpgradePlan, by: str, now: datetime, records: int, versions: int
) -> None:
    kept = sum(c.action is LockAction.KEEP_LONGER for c in plan.changes)
    entities: Iterable[tuple[str, str]] = (("policy", plan.policy_ref),)
    if records <= 200:  # the register has every record; the audit names small batches in full
        entities = (*entities, *(("encounter", c.encounter_id) for c in plan.extensions))
    audit.append(
        AuditEvent(
            actor=by,
            role="records-officer",
            action="retention.extend",
            recorded=now,
            entities=tuple(entities),
            detail={"records": records, "versions": versions, "shorter_rule_unchanged": kept},
        )
    )
    audit.flush(now=now)

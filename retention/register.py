"""The retention register: holds, lock changes and destructions, as a hash-chained locked log.

The catalog records what was archived, once; it is append-only and per run, so it cannot say
"this record is now on hold", "its lock was extended" or "it was destroyed". Those facts live
here, as typed events in a :class:`archive.audit.SegmentChain` (local copy beside the catalog in
``<catalog_dir>/../retention``, sealed locked copies under ``retention/sealed/v1/events/`` in the
bucket: see :mod:`archive.store.sealed`). Every reader (holds, upgrades, disposition, the
verifier) folds the events into current state:

* ``hold.placed`` / ``hold.released``: which object versions each active case holds;
  ``hold.release_requested``: a release one person asked for, waiting for a second;
* ``lock.extended``: an encounter's current class and retain-until after an upgrade;
* ``disposition.proposed`` / ``disposition.approved`` / ``disposition.destroyed``: proposals,
  their sha256, and the object versions (and encounters) that no longer exist, so the verifier
  stops expecting them (:meth:`Register.destroyed_versions`, :meth:`Register.destroyed_encounters`).

Events hold encounter ids, pseudonyms, object keys and version ids: never names or patient ids.
Still, with classes, dates and case references they are sensitive, so the register's own objects
(segments, disposition proposals) go through :attr:`Register.meta_store`, which seals them;
:attr:`Register.store` is the plain store, for the lock state of the records themselves.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from archive.audit import ChainReport, SegmentChain, configured_chain_key
from archive.core.settings import Settings
from archive.store import ObjectStore, SealedStore

REGISTER_PREFIX: Final = "retention/sealed/v1/events/"
LEGACY_REGISTER_PREFIX: Final = "retention/events/"  # plaintext copies of releases before sealing
Version = tuple[str, str]  # (object_key, version_id)


@dataclass(frozen=True, slots=True)
class Hold:
    """An active legal hold and the object versions it placed its hold on."""

    hold_id: str
    case_ref: str
    reason: str
    placed_by: str
    placed_at: str
    scope: Mapping[str, Any]
    versions: frozenset[Version]
    encounters: frozenset[str]


class Register:
    """Read and append the retention register. Build with :meth:`open` or :meth:`for_settings`."""

    def __init__(
        self, chain: SegmentChain, store: ObjectStore, *, meta_store: ObjectStore | None = None
    ) -> None:
        self._chain, self._store = chain, store
        self._meta = meta_store if meta_store is not None else store

    @classmethod
    def open(
        cls,
        directory: Path,
        store: ObjectStore,
        *,
        key: bytes,
        retain_years: int = 100,
        meta_store: ObjectStore | None = None,
    ) -> Register:
        """``meta_store`` (default: ``store`` as it is) takes the register's own objects: pass a
        SealedStore for a bucket, as :meth:`for_settings` does. ``key`` seals HEAD: the
        keyring's chain key."""
        meta = meta_store if meta_store is not None else store
        chain = SegmentChain(
            directory, meta, prefix=REGISTER_PREFIX, key=key, retain_years=retain_years
        )
        return cls(chain, store, meta_store=meta)

    @classmethod
    def for_settings(cls, settings: Settings, store: ObjectStore) -> Register:
        years = settings.catalog.manifest_retain_years
        sealed = SealedStore.for_settings(settings, store)  # records' locks: the plain store
        key = configured_chain_key(settings)
        directory = register_dir(settings)
        return cls.open(directory, sealed.inner, key=key, retain_years=years, meta_store=sealed)

    @property
    def store(self) -> ObjectStore:
        """The plain store: the records' versions and lock state (holds, extensions, deletion)."""
        return self._store

    @property
    def meta_store(self) -> ObjectStore:
        """Where the register's own objects (segments, proposals) are written: sealing."""
        return self._meta

    def append(self, events: Sequence[Mapping[str, Any]], *, now: datetime) -> None:
        """Chain ``events`` (each with a ``type``) as one locked segment."""
        self._chain.append(events, now=now)

    def verify(self) -> ChainReport:
        """The chain checked locally and against the locked bucket copies."""
        return self._chain.verify()

    def events(self, *types: str) -> list[dict[str, Any]]:
        records = self._chain.records()
        return [r for r in records if not types or r["type"] in types]

    # --- folded state ---------------------------------------------------------------------------

    def active_holds(self) -> dict[str, Hold]:
        holds: dict[str, Hold] = {}
        for event in self.events("hold.placed", "hold.released"):
            if event["type"] == "hold.released":
                holds.pop(event["hold_id"], None)
                continue
            holds[event["hold_id"]] = Hold(
                hold_id=event["hold_id"],
                case_ref=event["case_ref"],
                reason=event["reason"],
                placed_by=event["by"],
                placed_at=event["at"],
                scope=event["scope"],
                versions=frozenset((k, v) for k, v in event["versions"]),
                encounters=frozenset(event["encounters"]),
            )
        return holds

    def release_requests(self) -> dict[str, dict[str, Any]]:
        """Hold id -> the pending ``hold.release_requested`` event, for holds still active."""
        pending: dict[str, dict[str, Any]] = {}
        for event in self.events("hold.release_requested", "hold.released"):
            if event["type"] == "hold.released":
                pending.pop(event["hold_id"], None)
            else:
                pending[event["hold_id"]] = event
        return pending

    def held_versions(self) -> dict[Version, set[str]]:
        """Every version some active hold needs, with the ids of the holds needing it."""
        held: dict[Version, set[str]] = {}
        for hold in self.active_holds().values():
            for version in hold.versions:
                held.setdefault(version, set()).add(hold.hold_id)
        return held

    def held_encounters(self) -> set[str]:
        return {e for hold in self.active_holds().values() for e in hold.encounters}

    def lock_changes(self) -> dict[str, tuple[str, datetime]]:
        """Encounter id -> (class, retain-until) after the latest ``lock.extended``."""
        changes: dict[str, tuple[str, datetime]] = {}
        for event in self.events("lock.extended"):
            until = datetime.fromisoformat(event["new_until"])
            changes[event["encounter_id"]] = (event["new_class"], until)
        return changes

    def destroyed_versions(self) -> set[Version]:
        return {(k, v) for e in self.events("disposition.destroyed") for k, v in e["versions"]}

    def destroyed_encounters(self) -> set[str]:
        return {i for e in self.events("disposition.destroyed") for i in e["encounters"]}

    def proposal_event(self, proposal_id: str, kind: str) -> dict[str, Any] | None:
        found = [e for e in self.events(kind) if e["proposal_id"] == proposal_id]
        return found[-1] if found else None


def register_dir(settings: Settings) -> Path:
    return settings.retention_dir


def live_rows(catalog_table: Any, register: Register) -> list[dict[str, Any]]:
    """Catalog rows (as dicts) of records not destroyed, with upgrades applied to class and date.

    The catalog row keeps the class and date of the day it was archived; the register knows
    later extensions, and the longer of the two is the record's current retention."""
    gone = register.destroyed_encounters()
    changes = register.lock_changes()
    rows = []
    for row in catalog_table.to_pylist():
        if row["encounter_id"] in gone:
            continue
        changed = changes.get(row["encounter_id"])
        if changed is not None and changed[1] > row["retain_until"]:
            row["retention_class"], row["retain_until"] = changed
        rows.append(row)
    return rows


def versions_by_key(store: ObjectStore, keys: Iterable[str]) -> dict[str, list[str]]:
    """Every version id of each of ``keys``, from one listing of their common prefix (a LIST
    page holds 1,000 versions; one listing per key would cost a request per record)."""
    wanted = set(keys)
    found: dict[str, list[str]] = {key: [] for key in wanted}
    if not wanted:
        return found
    prefix = os.path.commonprefix(sorted(wanted))  # noqa: RUF071 - S3 prefixes are characters
    for v in store.list_versions(prefix):
        if v.key in wanted and not v.is_delete_marker:
            found[v.key].append(v.version_id)
    return found


def versions_of(store: ObjectStore, key: str) -> list[str]:
    """Every version id stored under exactly ``key`` (a listing is by prefix)."""
    return [
        v.version_id for v in store.list_versions(key) if v.key == key and not v.is_delete_marker
    ]

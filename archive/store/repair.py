"""Repair a site from the other: copy back what one site lost, only bytes the catalog vouches for.

Input: the intact ``source`` site, the damaged ``target`` site, and the SHA-256 the catalog
recorded for every record object (of the *sealed* bytes: ``sealed_sha256``). Output: a
:class:`RepairReport` of what was restored, re-locked, re-held or refused.

- A record object is copied only when the source's bytes hash to the catalog's SHA-256; other
  objects (sealed catalog copies, audit and register segments, quarantine entries) only when they
  hash to the SHA-256 checksum the store recorded when they were written (S3 ``ChecksumSHA256``,
  checked by the store on upload). An uncatalogued record object is never spread.
- The copy is created once under COMPLIANCE with the source's retain-until, and its legal hold
  mirrored. A target holding other bytes under a key is reported, never overwritten (it cannot be).
- Sealed bytes are copied as they are: repair takes no key and cannot decrypt.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from archive.core.errors import ArchiveError
from archive.store.base import COMPLIANCE, ObjectHead, ObjectStore, sha256_hex
from archive.store.naming import RECORDS_PREFIX

_SKIP = ("_health/",)  # the stack's readiness probe, deleted right after it is written


@dataclass(frozen=True, slots=True)
class Refusal:
    key: str
    reason_code: str  # repair.source_mismatch | repair.source_missing | repair.uncatalogued | ...
    message: str


@dataclass(frozen=True, slots=True)
class RepairReport:
    checked: int = 0
    copied: tuple[str, ...] = ()
    relocked: tuple[str, ...] = ()
    held: tuple[str, ...] = ()
    refused: tuple[Refusal, ...] = ()
    bytes_copied: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.refused


@dataclass(slots=True)
class _Tally:
    checked: int = 0
    copied: list[str] = field(default_factory=list)
    relocked: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    bytes_copied: int = 0


def repair(
    source: ObjectStore,
    target: ObjectStore,
    *,
    catalogued: Mapping[str, str],
    plan_only: bool = False,
) -> RepairReport:
    """Restore at ``target`` every live object of ``source`` it lacks (``catalogued``: record
    key -> the catalog's sealed SHA-256). With ``plan_only`` nothing is written; the report says
    what would be."""
    started = time.perf_counter()
    tally = _Tally()
    live = {
        v.key: v.version_id
        for v in source.list_versions("")
        if v.is_latest and not v.is_delete_marker and not v.key.startswith(_SKIP)
    }
    for key in sorted(set(catalogued) - set(live)):
        tally.refused.append(
            Refusal(key, "repair.source_missing", "catalogued but absent at the source too")
        )
    for key in sorted(live):
        tally.checked += 1
        try:
            _repair_one(
                source,
                target,
                source.head(key, version_id=live[key]),
                catalogued,
                tally,
                plan_only=plan_only,
            )
        except ArchiveError as e:
            tally.refused.append(Refusal(key, "repair.store_error", type(e).__name__))
    return RepairReport(
        checked=tally.checked,
        copied=tuple(tally.copied),
        relocked=tuple(tally.relocked),
        held=tuple(tally.held),
        refused=tuple(tally.refused),
        bytes_copied=tally.bytes_copied,
        seconds=time.perf_counter() - started,
    )


def _repair_one(
    source: ObjectStore,
    target: ObjectStore,
    head: ObjectHead,
    catalogued: Mapping[str, str],
    tally: _Tally,
    *,
    plan_only: bool,
) -> None:
    key = head.key
    expected = catalogued.get(key)
    if expected is None and key.startswith(RECORDS_PREFIX):
        tally.refused.append(Refusal(key, "repair.uncatalogued", "no catalog row names it"))
        return
    until = head.lock.retain_until
    if head.lock.mode != COMPLIANCE or until is None:
        tally.refused.append(
            Refusal(key, "repair.source_unlocked", "the source copy is not COMPLIANCE-locked")
        )
        return
    copy = target.latest(key)
    if copy is None:
        data = source.get(key, version_id=head.version_id)
        wanted = expected or head.sha256
        if wanted is None or sha256_hex(data) != wanted:
            tally.refused.append(
                Refusal(
                    key,
                    "repair.source_mismatch",
                    "the source bytes do not match the "
                    + ("catalog's SHA-256" if expected else "stored SHA-256 checksum"),
                )
            )
            return
        tally.copied.append(key)
        tally.bytes_copied += len(data)
        if plan_only:
            if head.lock.legal_hold:
                tally.held.append(key)
            return
        target.put_locked(key, data, retain_until=until)
        copy = target.latest(key)
        if copy is None:
            tally.refused.append(Refusal(key, "repair.store_error", "the copy did not appear"))
            return
    if copy.sha256 != (expected or head.sha256):
        tally.refused.append(
            Refusal(key, "repair.target_differs", "the target holds other bytes; not overwritten")
        )
        return
    _align_lock(target, head, copy, tally, plan_only=plan_only)


def _align_lock(
    target: ObjectStore, head: ObjectHead, copy: ObjectHead, tally: _Tally, *, plan_only: bool
) -> None:
    until = head.lock.retain_until
    assert until is not None  # checked by the caller
    current = copy.lock.retain_until
    if copy.lock.mode != COMPLIANCE or current is None or current < until:
        if copy.key not in tally.copied:
            tally.relocked.append(copy.key)
        if not plan_only:
            target.extend_retention(copy.key, version_id=copy.version_id, retain_until=until)
    if head.lock.legal_hold and not copy.lock.legal_hold:
        tally.held.append(copy.key)
        if not plan_only:
            target.set_legal_hold(copy.key, version_id=copy.version_id, on=True)

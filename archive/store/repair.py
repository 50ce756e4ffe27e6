"""Repair a site from the other: copy back what one site lost, only bytes something vouches for.

Input: the intact ``source`` site, the damaged ``target`` site, and the SHA-256 the catalog
recorded for every record object (of the *sealed* bytes: ``sealed_sha256``). Output: a
:class:`RepairReport` of what was restored, re-locked, re-held or refused.

What vouches for the bytes, since repair holds no key and so can neither open an envelope nor
recompute the keyed digests the audit and register chains name their segments by:

- a record object: the catalog's SHA-256 (kept apart from the store, hash-chained). An
  uncatalogued record object is never spread.
- any other object (sealed catalog manifests, audit, register and access segments, evidence
  records and the evidence stage's state, quarantine entries, minutes): the SHA-256 checksum the
  writer sent with the object and the store checked on upload (S3 ``ChecksumSHA256``; an object
  without one is refused), *and* the envelope's structure (:func:`archive.seal.check_shape`: a
  strict header, whole frames, nothing after the last). Only the prefixes written in clear by
  releases before metadata was sealed (``plaintext_prefixes``) skip the second check. The chains
  themselves (and the GCM tags) are checked, with the keyring, by the next verification run.

The copy is created once under COMPLIANCE with the source's retain-until, and its legal hold
mirrored. A target holding other bytes under a key is reported, never overwritten (it cannot be).
Objects are repaired on a bounded pool of threads sharing the stores' boto3 clients (thread-safe;
retries are botocore's): the work is round trips, not CPU.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from archive.core.errors import ArchiveError, SealError
from archive.seal import check_shape
from archive.store.base import COMPLIANCE, ObjectHead, ObjectStore, sha256_hex
from archive.store.naming import RECORDS_PREFIX, UNREPLICATED_PREFIXES

_SKIP = UNREPLICATED_PREFIXES  # coordination objects: no copy at the other site
THREADS = 8  # requests in flight; botocore's connection pool holds 10 per client


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
    # Each catalogued record the target holds after the repair: (key, its version id there, the
    # retain-until it has): what a primary repair re-homes the catalogued version ids to.
    placed: tuple[tuple[str, str, datetime], ...] = ()
    rehomed: int = 0  # catalogued versions re-homed (a primary repair)
    rehomed_segments: int = 0

    @property
    def ok(self) -> bool:
        return not self.refused


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What repairing one key did (built in a worker thread, tallied in the caller's)."""

    copied: int = -1  # bytes copied, -1: nothing copied
    relocked: bool = False
    held: bool = False
    refusal: Refusal | None = None
    placed: tuple[str, datetime] | None = None  # a catalogued record's version at the target


def repair(
    source: ObjectStore,
    target: ObjectStore,
    *,
    catalogued: Mapping[str, str],
    plain_prefixes: Iterable[str] = (),
    plan_only: bool = False,
    threads: int = THREADS,
) -> RepairReport:
    """Restore at ``target`` every live object of ``source`` it lacks (``catalogued``: record
    key -> the catalog's sealed SHA-256; ``plain_prefixes``: where legacy objects are not
    envelopes). With ``plan_only`` nothing is written; the report says what would be."""
    started = time.perf_counter()
    live = {
        v.key: v.version_id
        for v in source.list_versions("")
        if v.is_latest and not v.is_delete_marker and not v.key.startswith(_SKIP)
    }
    refused = [
        Refusal(key, "repair.source_missing", "catalogued but absent at the source too")
        for key in sorted(set(catalogued) - set(live))
    ]
    plain = tuple(plain_prefixes)

    def one(key: str) -> _Outcome:
        try:
            head = source.head(key, version_id=live[key])
            return _repair_one(source, target, head, catalogued, plain, plan_only=plan_only)
        except ArchiveError as e:
            return _refuse(key, "repair.store_error", type(e).__name__)

    keys = sorted(live)
    copied: list[str] = []
    relocked: list[str] = []
    held: list[str] = []
    placed: list[tuple[str, str, datetime]] = []
    size = 0
    with ThreadPoolExecutor(max(1, threads), thread_name_prefix="repair") as pool:
        for key, out in zip(keys, pool.map(one, keys), strict=True):
            if out.refusal is not None:
                refused.append(out.refusal)
                continue
            if out.copied >= 0:
                copied.append(key)
                size += out.copied
            relocked += [key] if out.relocked else []
            held += [key] if out.held else []
            placed += [(key, *out.placed)] if out.placed is not None else []
    return RepairReport(
        checked=len(keys),
        copied=tuple(copied),
        relocked=tuple(relocked),
        held=tuple(held),
        refused=tuple(refused),
        bytes_copied=size,
        seconds=time.perf_counter() - started,
        placed=tuple(placed),
    )


def _refuse(key: str, code: str, message: str) -> _Outcome:
    return _Outcome(refusal=Refusal(key, code, message))


def _repair_one(
    source: ObjectStore,
    target: ObjectStore,
    head: ObjectHead,
    catalogued: Mapping[str, str],
    plain: tuple[str, ...],
    *,
    plan_only: bool,
) -> _Outcome:
    key = head.key
    expected = catalogued.get(key)
    if expected is None and key.startswith(RECORDS_PREFIX):
        return _refuse(key, "repair.uncatalogued", "no catalog row names it")
    until = head.lock.retain_until
    if head.lock.mode != COMPLIANCE or until is None:
        return _refuse(key, "repair.source_unlocked", "the source copy is not COMPLIANCE-locked")
    wanted = expected or head.sha256
    if wanted is None:
        return _refuse(key, "repair.source_unverified", "no SHA-256 recorded for it anywhere")
    copied = -1
    copy = target.latest(key)
    if copy is None:
        data = source.get(key, version_id=head.version_id)
        if sha256_hex(data) != wanted:
            what = "catalog's SHA-256" if expected else "checksum stored at upload"
            return _refuse(key, "repair.source_mismatch", f"source bytes differ from the {what}")
        if expected is None and not key.startswith(plain):
            try:
                check_shape(data)
            except SealError as e:
                return _refuse(key, "repair.source_malformed", f"not a whole envelope: {e}")
        copied = len(data)
        if plan_only:
            return _Outcome(copied=copied, held=head.lock.legal_hold)
        target.put_locked(key, data, retain_until=until)
        copy = target.latest(key)
        if copy is None:
            return _refuse(key, "repair.store_error", "the copy did not appear")
    if copy.sha256 != wanted:
        return _refuse(key, "repair.target_differs", "the target holds other bytes (kept as is)")
    relock, hold = _align_lock(target, head, copy, plan_only=plan_only)
    placed = (copy.version_id, until) if expected is not None else None
    return _Outcome(copied=copied, relocked=relock and copied < 0, held=hold, placed=placed)


def _align_lock(
    target: ObjectStore, head: ObjectHead, copy: ObjectHead, *, plan_only: bool
) -> tuple[bool, bool]:
    """Extend the copy's lock to the source's and mirror its hold: (re-locked, re-held)."""
    until = head.lock.retain_until
    assert until is not None  # checked by the caller
    current = copy.lock.retain_until
    relock = copy.lock.mode != COMPLIANCE or current is None or current < until
    if relock and not plan_only:
        target.extend_retention(copy.key, version_id=copy.version_id, retain_until=until)
    hold = head.lock.legal_hold and not copy.lock.legal_hold
    if hold and not plan_only:
        target.set_legal_hold(copy.key, version_id=copy.version_id, on=True)
    return relock, hold

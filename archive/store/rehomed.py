"""The re-homed map: which version a primary repair restored for each catalogued version.

S3 gives every object it stores a new version id, and the catalog, the retention register and
verification name the primary's original ones. When the primary is repaired from the replica
(``emr-archive repair --site primary``), each restored record gets an entry here: object key,
catalogued version id, restored version id, the catalog's SHA-256 of the sealed bytes.

Repair holds no key, so the map is written in clear (record keys carry no PHI by construction,
:mod:`archive.store.naming`; the rest is ids and digests) and protected the way the store allows:

- segments ``rehomed/v1/<seq>.json``, created once under COMPLIANCE (until the longest lock of the
  versions they map), numbered from 1 without gaps, each naming the SHA-256 of the one before;
- a key with a second version, a segment not COMPLIANCE-locked, not matching the checksum stored
  at upload, out of sequence or out of chain makes the whole map refused (:class:`RehomedError`):
  reads through it fail rather than trust a part of it;
- and above all, the reader serves a restored version only when its bytes hash to the entry's
  SHA-256 *and* that SHA-256 is the catalog's for the catalogued version
  (:class:`archive.store.rehomed_store.RehomedStore`): whoever can write a well-chained segment
  still cannot make the archive serve other bytes than those it catalogued.

A later entry for the same catalogued version (a primary lost twice) supersedes the earlier one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from archive.core.errors import ObjectConflictError, RehomedError
from archive.store.base import COMPLIANCE, ObjectStore, sha256_hex

REHOMED_PREFIX = "rehomed/v1/"
GENESIS = "0" * 64
FORMAT = 1
PER_SEGMENT = 5000  # entries per segment: ~0.8 MB of JSON
_NAME = re.compile(r"(\d{8})\.json")
_HEX64 = re.compile(r"[0-9a-f]{64}")

Version = tuple[str, str]  # (object key, version id)


@dataclass(frozen=True, slots=True)
class Rehoming:
    key: str
    catalogued: str  # the version id the catalog names
    restored: str  # the version id the repaired primary gave the copy
    sha256: str  # of the sealed bytes: the catalog's


@dataclass(slots=True)
class RehomedMap:
    """The verified map; empty when no primary was ever repaired."""

    entries: dict[Version, Rehoming] = field(default_factory=dict)
    restored: dict[Version, str] = field(default_factory=dict)  # (key, restored) -> catalogued
    segment_of: dict[Version, str] = field(default_factory=dict)  # catalogued -> segment key
    seq: int = 0  # of the last segment
    head: str = GENESIS  # SHA-256 of the last segment's bytes

    def get(self, key: str, version_id: str) -> Rehoming | None:
        return self.entries.get((key, version_id))

    def _add(self, entry: Rehoming, segment: str) -> None:
        old = self.entries.get((entry.key, entry.catalogued))
        if old is not None:
            self.restored.pop((old.key, old.restored), None)
        self.entries[(entry.key, entry.catalogued)] = entry
        self.restored[(entry.key, entry.restored)] = entry.catalogued
        self.segment_of[(entry.key, entry.catalogued)] = segment


def segment_key(seq: int) -> str:
    return f"{REHOMED_PREFIX}{seq:08d}.json"


def encode_segment(
    seq: int, previous: str, entries: Sequence[Rehoming], *, written: datetime
) -> bytes:
    body = {
        "format": FORMAT,
        "seq": seq,
        "previous": previous,
        "written": written.isoformat(),
        "entries": [[e.key, e.catalogued, e.restored, e.sha256] for e in entries],
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def decode_segment(data: bytes, *, seq: int, previous: str, name: str) -> list[Rehoming]:
    """The entries of segment ``seq``, refused unless it is exactly what a writer chaining on
    ``previous`` produced."""
    try:
        body = json.loads(data)
        entries = [Rehoming(*map(str, e)) for e in body["entries"]]
        ok = (
            isinstance(body, dict)
            and body.get("format") == FORMAT
            and body.get("seq") == seq
            and all(isinstance(e, list) and len(e) == 4 for e in body["entries"])
        )
    except (ValueError, TypeError, KeyError) as e:
        raise RehomedError(
            f"re-homed segment {name} is not a map segment ({type(e).__name__})"
        ) from e
    if not ok:
        raise RehomedError(f"re-homed segment {name} is not a format-{FORMAT} segment {seq}")
    if body.get("previous") != previous:
        raise RehomedError(
            f"re-homed segment {name} does not chain on the segment before it: the map was "
            "altered or a segment was written outside `emr-archive repair`"
        )
    if any(not _HEX64.fullmatch(e.sha256) for e in entries):
        raise RehomedError(f"re-homed segment {name} holds an entry without a SHA-256")
    return entries


def read_map(store: ObjectStore) -> RehomedMap:
    """Load and verify every segment (one listing; nothing else when there is none)."""
    found: dict[int, list[str]] = {}
    for v in store.list_versions(REHOMED_PREFIX):
        match = _NAME.fullmatch(v.key[len(REHOMED_PREFIX) :])
        if v.is_delete_marker:
            continue
        if match is None:
            raise RehomedError(f"{v.key} under {REHOMED_PREFIX} is not a map segment")
        found.setdefault(int(match[1]), []).append(v.version_id)
    rmap = RehomedMap()
    for seq in sorted(found):
        key = segment_key(seq)
        if seq != rmap.seq + 1:
            raise RehomedError(f"re-homed map: segment {rmap.seq + 1} is missing before {key}")
        if len(found[seq]) != 1:
            raise RehomedError(f"re-homed segment {key} has {len(found[seq])} versions, not one")
        head = store.head(key, version_id=found[seq][0])
        if head.lock.mode != COMPLIANCE or head.lock.retain_until is None:
            raise RehomedError(f"re-homed segment {key} is not under a COMPLIANCE lock")
        data = store.get(key, version_id=head.version_id)
        digest = sha256_hex(data)
        if head.sha256 is None or head.sha256 != digest:
            raise RehomedError(f"re-homed segment {key} does not match its stored checksum")
        for entry in decode_segment(data, seq=seq, previous=rmap.head, name=key):
            rmap._add(entry, key)
        rmap.seq, rmap.head = seq, digest
    return rmap


def append_map(
    store: ObjectStore,
    rmap: RehomedMap,
    entries: Iterable[tuple[Rehoming, datetime]],
    *,
    now: datetime,
    per_segment: int = PER_SEGMENT,
) -> list[str]:
    """Chain ``entries`` (each with the retain-until of the version it maps) onto ``rmap`` in
    new segments, each locked until its longest entry's date; ``rmap`` is updated. Returns the
    segment keys written. A segment key already taken (another repair at the same time) is
    refused: read the map again and retry."""
    items = list(entries)
    written: list[str] = []
    for start in range(0, len(items), per_segment):
        chunk = items[start : start + per_segment]
        seq = rmap.seq + 1
        data = encode_segment(seq, rmap.head, [e for e, _ in chunk], written=now)
        key = segment_key(seq)
        try:
            store.put_locked(key, data, retain_until=max(until for _, until in chunk))
        except ObjectConflictError as e:
            raise RehomedError(
                f"{key} was written by someone else meanwhile: run the repair again"
            ) from e
        for entry, _ in chunk:
            rmap._add(entry, key)
        rmap.seq, rmap.head = seq, sha256_hex(data)
        written.append(key)
    return written

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

Readers keep the map for the process (:func:`indexed_map`): every read still lists the segments
and HEADs each one (one version, COMPLIANCE lock, stored checksum), but a segment's bytes are
fetched, hashed and decoded once per process - while the stored checksums equal those verified -
and a new segment (another repair) is read alone, chained on the last one verified. Anything else
(a segment gone, replaced, or another bucket's) is read again from the first.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from archive.core.errors import ObjectConflictError, RehomedError
from archive.store.base import COMPLIANCE, ObjectHead, ObjectStore, sha256_hex

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

    def copy(self) -> RehomedMap:
        return RehomedMap(
            dict(self.entries), dict(self.restored), dict(self.segment_of), self.seq, self.head
        )

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


@dataclass(frozen=True, slots=True)
class _Verified:
    """A map as verified, with what it was verified from: (version id, SHA-256) per segment."""

    segments: tuple[tuple[str, str], ...]
    rmap: RehomedMap  # never changed once here: readers in other threads hold it


_INDEX: dict[str, _Verified] = {}  # bucket -> the map last verified in this process
_INDEX_LOCK = threading.Lock()


def read_map(store: ObjectStore) -> RehomedMap:
    """Load and verify every segment (one listing; nothing else when there is none). The map
    is the caller's to extend (:func:`append_map`)."""
    return _read(store, None).rmap


def indexed_map(store: ObjectStore) -> RehomedMap:
    """As :func:`read_map`, reading only the segments this process has not verified yet (see
    the module's docstring). The map is shared: never change it."""
    with _INDEX_LOCK:
        known = _INDEX.get(store.bucket)
    verified = _read(store, known)
    with _INDEX_LOCK:
        _INDEX[store.bucket] = verified
    return verified.rmap


def _read(store: ObjectStore, known: _Verified | None) -> _Verified:
    heads = [_checked_head(store, key, version) for key, version in _listed(store)]
    segments = tuple((h.version_id, h.sha256 or "") for h in heads)
    if known is not None and segments[: len(known.segments)] == known.segments:
        if len(segments) == len(known.segments):
            return known
        rmap = known.rmap.copy()
    else:
        rmap = RehomedMap()
    for head in heads[rmap.seq :]:
        data = store.get(head.key, version_id=head.version_id)
        digest = sha256_hex(data)
        if head.sha256 != digest:
            raise RehomedError(f"re-homed segment {head.key} does not match its stored checksum")
        for entry in decode_segment(data, seq=rmap.seq + 1, previous=rmap.head, name=head.key):
            rmap._add(entry, head.key)
        rmap.seq, rmap.head = rmap.seq + 1, digest
    return _Verified(segments, rmap)


def _listed(store: ObjectStore) -> list[tuple[str, str]]:
    """(key, version id) of each segment, in sequence: refused unless numbered from 1 without
    a gap, one version each, and nothing else under the prefix."""
    found: dict[int, list[str]] = {}
    for v in store.list_versions(REHOMED_PREFIX):
        match = _NAME.fullmatch(v.key[len(REHOMED_PREFIX) :])
        if v.is_delete_marker:
            continue
        if match is None:
            raise RehomedError(f"{v.key} under {REHOMED_PREFIX} is not a map segment")
        found.setdefault(int(match[1]), []).append(v.version_id)
    listed: list[tuple[str, str]] = []
    for seq in sorted(found):
        key = segment_key(seq)
        if seq != len(listed) + 1:
            raise RehomedError(f"re-homed map: segment {len(listed) + 1} is missing before {key}")
        if len(found[seq]) != 1:
            raise RehomedError(f"re-homed segment {key} has {len(found[seq])} versions, not one")
        listed.append((key, found[seq][0]))
    return listed


def _checked_head(store: ObjectStore, key: str, version_id: str) -> ObjectHead:
    head = store.head(key, version_id=version_id)
    if head.lock.mode != COMPLIANCE or head.lock.retain_until is None:
        raise RehomedError(f"re-homed segment {key} is not under a COMPLIANCE lock")
    if head.sha256 is None:
        raise RehomedError(f"re-homed segment {key} does not match its stored checksum")
    return head


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

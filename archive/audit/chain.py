"""A hash-chained log of JSON records, in local segments each locked as a copy in the bucket.

The audit log and the retention and access registers are all such chains. Each ``append`` writes
one segment: a JSONL file whose lines are records carrying ``seq`` (1, 2, ... across all segments)
and ``prev`` (sha256 of the previous record's line; 64 zeros for the first). So an edited record
changes its hash and breaks the next ``prev`` (or HEAD for the newest); a removed or reordered
record breaks ``seq`` and ``prev``; a removed segment leaves a gap in the names. Each segment is
stored create-once under a COMPLIANCE lock in the bucket (``<prefix>0000000001.jsonl``), which is
the authority: :meth:`SegmentChain.verify` with a store also compares every local segment with
its locked copy and notices copies the local directory lacks. Seq and prev are assigned under a
file lock at append time, so several processes may append to the same chain.

Segments name encounters, pseudonyms, staff and cases: callers give the chain a
:class:`archive.store.SealedStore`, so the bucket holds only envelopes, and local files are
private (0600).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from archive.catalog import manifest_retain_until
from archive.core.atomic import write_private
from archive.core.errors import AuditChainError, SealError
from archive.store import ObjectStore, sha256_hex

GENESIS: Final = "0" * 64
SWEEP_S: Final = 60.0  # how often a long-lived process re-stats every segment it checked
_SEGMENT = re.compile(r"([0-9]{10})\.jsonl")


def canonical(record: Mapping[str, Any]) -> bytes:
    """One deterministic JSON line: the bytes a record's hash is taken over."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class ChainReport:
    """Bottom line of :meth:`SegmentChain.verify`; an empty log passes with zero events."""

    passed: bool
    events: int
    segments: int
    reason: str


class SegmentChain:
    """A hash-chained log of JSON records in locally cached, bucket-locked JSONL segments."""

    def __init__(self, directory: Path, *, prefix: str, retain_years: int = 100) -> None:
        self.directory, self.prefix, self.retain_years = directory, prefix, retain_years
        # What this process has already checked: segments (with their size and mtime, so an
        # edit is noticed) and the records they hold. Appending and reading then cost the new
        # segments only, not the whole log: the portal appends one segment per request.
        self._checked: dict[str, tuple[int, int]] = {}
        self._records: list[dict[str, Any]] = []
        self._tail: tuple[int, str] = (0, GENESIS)
        self._swept = time.monotonic()
        self._uploads_checked = False
        self._head_behind = False  # a crash between a segment and its HEAD: see _check_head

    def records(self) -> list[dict[str, Any]]:
        """Every record, oldest first, after checking the local chain (AuditChainError)."""
        with self._lock(shared=True):  # not between another process's segment and its HEAD
            self._refresh()
            return list(self._records)

    def append(
        self, payloads: Sequence[Mapping[str, Any]], *, store: ObjectStore, now: datetime
    ) -> list[dict[str, Any]]:
        """Chain ``payloads`` onto the log as one new segment, write it, lock a copy."""
        if not payloads:
            return []
        with self._lock():
            self._refresh()
            if not self._uploads_checked:  # once per process: what a crash left unuploaded
                self._upload_missing(self._local(), store, now)
                self._uploads_checked = True
            if self._head_behind:  # the killed append's segment chains on: finish its HEAD
                self._write_head(*self._tail)
                self._head_behind = False
            seq, prev = self._tail
            records: list[dict[str, Any]] = []
            for payload in payloads:
                seq += 1
                record = {**payload, "seq": seq, "prev": prev}
                prev = sha256_hex(canonical(record))
                records.append(record)
            data = b"".join(canonical(r) + b"\n" for r in records)
            name = f"{len(self._checked) + 1:010d}.jsonl"
            write_private(self.directory / "segments" / name, data)
            self._write_head(seq, prev)
            self._put(store, name, data, now)
            self._refresh()  # takes the new segment in (and checks HEAD) like anyone else's
            return records

    def verify(self, store: ObjectStore | None = None) -> ChainReport:
        """Check the local chain and HEAD, and (with ``store``) that the bucket agrees."""
        try:
            segments = self._local()
            chained = self._check(segments)
            if store is not None:
                self._compare_bucket(segments, store)
        except AuditChainError as e:
            return ChainReport(passed=False, events=0, segments=0, reason=str(e))
        events = sum(len(lines) for _, lines in chained)
        return ChainReport(True, events, len(segments), f"{events} events chained and intact")

    # --- internals ------------------------------------------------------------------------------

    def _refresh(self) -> None:
        """Check the segments this process has not seen yet, chained onto what it has.

        Segments it had checked are looked at again cheaply: the newest one's size and time on
        every call, all of them at most once a minute (a stat each); a change starts a full
        check over. An edit that keeps size and time is left to :meth:`verify`, which rereads
        everything and compares it with the locked bucket copies."""
        folder = self.directory / "segments"
        names = self._names()
        if self._changed(folder, names):
            self._checked, self._records, self._tail = {}, [], (0, GENESIS)
        fresh = [(n, (folder / n).read_bytes()) for n in names[len(self._checked) :]]
        records: list[dict[str, Any]] = []
        for name, lines in self._check(fresh, start=self._tail):
            records += lines
            self._checked[name] = _stat(folder / name)
        if records:
            self._tail = (records[-1]["seq"], sha256_hex(canonical(records[-1])))
        self._records += records

    def _changed(self, folder: Path, names: list[str]) -> bool:
        if not self._checked:
            return False
        newest = next(reversed(self._checked))
        if len(names) < len(self._checked) or names[len(self._checked) - 1] != newest:
            return True
        if _stat(folder / newest) != self._checked[newest]:
            return True
        if time.monotonic() - self._swept < SWEEP_S:
            return False
        self._swept = time.monotonic()
        with os.scandir(folder) as entries:
            seen = {e.name: (e.stat().st_size, e.stat().st_mtime_ns) for e in entries}
        return any(seen.get(n) != stat for n, stat in self._checked.items())

    def _names(self) -> list[str]:
        folder = self.directory / "segments"
        if not folder.is_dir():
            return []
        names = sorted(n for n in os.listdir(folder) if not n.startswith("."))
        for i, name in enumerate(names, start=1):
            if name != f"{i:010d}.jsonl":
                raise AuditChainError(
                    f"{folder}: expected segment {i:010d}.jsonl, found {name}: a segment was "
                    "removed, renamed or added; compare with the locked bucket copies"
                )
        return names

    def _local(self) -> list[tuple[str, bytes]]:
        folder = self.directory / "segments"
        return [(n, (folder / n).read_bytes()) for n in self._names()]

    def _check(
        self, segments: list[tuple[str, bytes]], *, start: tuple[int, str] = (0, GENESIS)
    ) -> list[tuple[str, list[dict[str, Any]]]]:
        """Chain-check ``segments`` following the event ``start`` names, then HEAD."""
        (seq, prev), out = start, []
        boundaries = [start]  # where HEAD may point: after a whole segment
        for name, data in segments:
            lines = []
            for n, line in enumerate(data.splitlines(), start=1):
                where = f"{self.prefix}{name} line {n}"
                record = _parse(line, where)
                if record.get("seq") != seq + 1 or record.get("prev") != prev:
                    raise AuditChainError(
                        f"{where}: expected event {seq + 1} chained to {prev[:12]}...: an event "
                        "before it was edited, removed or reordered"
                    )
                seq, prev = seq + 1, sha256_hex(line)
                lines.append(record)
            out.append((name, lines))
            boundaries.append((seq, prev))
        self._check_head(boundaries)
        return out

    def _check_head(self, boundaries: list[tuple[int, str]]) -> None:
        """HEAD names the newest event, or the end of an earlier segment when an append was
        killed after writing its segment and before moving HEAD: every segment after that
        one chained on from it (checked by the caller), so the next append moves HEAD on."""
        (seq, prev), head = boundaries[-1], self.directory / "HEAD"
        self._head_behind = False
        if not head.exists():  # as if it named the genesis: killed in the first append
            if seq and boundaries[0] != (0, GENESIS):
                raise AuditChainError(f"{head} is missing while the log holds {seq} events")
            self._head_behind = seq > 0
            return
        named = _parse(head.read_bytes(), str(head))
        if named == {"seq": seq, "sha256": prev}:
            return
        if any(named == {"seq": s, "sha256": h} for s, h in boundaries[:-1]):
            self._head_behind = True
            return
        raise AuditChainError(
            f"{head} does not name the newest event ({seq}): the newest event or segment "
            "was edited or removed; compare with the locked bucket copies"
        )

    def _write_head(self, seq: int, prev: str) -> None:
        write_private(self.directory / "HEAD", canonical({"seq": seq, "sha256": prev}))

    def _compare_bucket(self, segments: list[tuple[str, bytes]], store: ObjectStore) -> None:
        local = dict(segments)
        for version in store.list_versions(self.prefix):
            name = version.key.removeprefix(self.prefix)
            if version.is_delete_marker or not _SEGMENT.fullmatch(name):
                continue
            if name not in local:
                raise AuditChainError(
                    f"the bucket holds {version.key}, which the local log lacks: it was cut short"
                )
            try:
                copy = store.get(version.key, version_id=version.version_id)
            except SealError as e:
                raise AuditChainError(
                    f"the locked copy {version.key} does not open under this keyring "
                    f"({type(e).__name__}): it is damaged or was not written by this archive"
                ) from e
            if copy != local[name]:
                raise AuditChainError(f"local {name} differs from its locked copy {version.key}")

    def _upload_missing(
        self, segments: list[tuple[str, bytes]], store: ObjectStore, now: datetime
    ) -> None:
        """Finish an upload a crash interrupted (put_locked is idempotent for equal bytes)."""
        present = {v.key for v in store.list_versions(self.prefix)}
        for name, data in segments:
            if self.prefix + name not in present:
                self._put(store, name, data, now)

    def _put(self, store: ObjectStore, name: str, data: bytes, now: datetime) -> None:
        until = manifest_retain_until(now, years=self.retain_years)
        store.put_locked(self.prefix + name, data, retain_until=until)

    @contextlib.contextmanager
    def _lock(self, *, shared: bool = False) -> Iterator[None]:
        (self.directory / "segments").mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.directory / ".lock", "a+b") as lock:
            # Short critical sections: wait for them. Readers share, an append is exclusive.
            fcntl.flock(lock.fileno(), fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            yield


def _stat(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _parse(line: bytes, where: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError as e:
        raise AuditChainError(f"{where} is not JSON: it was edited or truncated") from e
    if not isinstance(value, dict):
        raise AuditChainError(f"{where} is not a JSON object")
    return value

"""A hash-chained log of JSON records, in local segments each locked as a copy in the bucket.

The audit log and the retention and access registers are all such chains. Each ``append`` writes
one segment: a JSONL file whose lines are records carrying ``seq`` (1, 2, ... across all segments)
and ``prev`` (sha256 of the previous record's line; 64 zeros for the first). So an edited record
changes its hash and breaks the next ``prev`` (or HEAD for the newest); a removed or reordered
record breaks ``seq`` and ``prev``; a removed segment leaves a gap in the names. HEAD is sealed
with the keyring's chain key, so a segment chained on without the keyring does not verify
(:mod:`archive.audit.seal`). Each segment is stored create-once under a COMPLIANCE lock in the
bucket under a name carrying its keyed digest, and the bucket is the authority: on opening a
chain (one LIST, no object read) and in :meth:`SegmentChain.verify`, every locked copy must be a
local segment with the same digest and every local segment must be in the bucket, except the
newest one while its upload is pending (:mod:`archive.audit.bucket`). A segment that does not
verify is never uploaded; one whose upload failed goes up with the next append. Seq and prev
are assigned under a file lock at append time, so several processes may append to one chain.

Segments name encounters, pseudonyms, staff and cases: callers give the chain a
:class:`archive.store.SealedStore`, so the bucket holds only envelopes, and local files are
private (0600).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from archive.audit.bucket import compare, list_copies
from archive.audit.seal import Head, canonical, object_key, read_head, segment_digest, write_head
from archive.audit.segments import GENESIS, chain_segments, file_stat, segment_names
from archive.catalog import manifest_retain_until
from archive.core.atomic import write_private
from archive.core.errors import AuditChainError
from archive.store import ObjectStore, sha256_hex

SWEEP_S: Final = 60.0  # how often a long-lived process re-stats every segment it checked
Checked = tuple[list[tuple[str, list[dict[str, Any]]]], Head, bool]


@dataclass(frozen=True, slots=True)
class ChainReport:
    """Bottom line of :meth:`SegmentChain.verify`; an empty log passes with zero events."""

    passed: bool
    events: int
    segments: int
    reason: str


class SegmentChain:
    """A hash-chained log of JSON records in locally cached, bucket-locked JSONL segments.

    ``store`` takes the locked copies (pass a SealedStore for a bucket); ``key`` is the
    keyring's chain key (:meth:`archive.seal.ArchiveKeys.chain_key`)."""

    def __init__(
        self,
        directory: Path,
        store: ObjectStore,
        *,
        prefix: str,
        key: bytes,
        retain_years: int = 100,
    ) -> None:
        self.directory, self.store, self.prefix = directory, store, prefix
        self.retain_years, self._key = retain_years, key
        # What this process has already checked: segments (with their size and mtime, so an
        # edit is noticed) and the records they hold. Appending and reading then cost the new
        # segments only, not the whole log: the portal appends one segment per request.
        self._checked: dict[str, tuple[int, int] | None] = {}
        self._digests: dict[str, str] = {}  # keyed digests of the bytes that were checked
        self._records: list[dict[str, Any]] = []
        self._tail: tuple[int, str] = (0, GENESIS)
        self._swept = time.monotonic()
        self._head = Head(0, GENESIS, None, sealed=False)
        self._head_behind = False  # a crash between a segment and its HEAD: see _check_head
        self._head_stat: tuple[int, int] | None = None  # HEAD as last checked
        self._in_bucket: set[str] = set()  # segments whose locked copy this process has seen
        self._compared = False  # the segments loaded were compared with the bucket's listing

    def records(self) -> list[dict[str, Any]]:
        """Every record, oldest first, after checking the chain (AuditChainError)."""
        with self._lock(shared=True):  # not between another process's segment and its HEAD
            self._refresh()
            return list(self._records)

    def append(
        self, payloads: Sequence[Mapping[str, Any]], *, now: datetime
    ) -> list[dict[str, Any]]:
        """Chain ``payloads`` onto the log as one new segment, write it, lock a copy.

        A segment whose upload failed (here or in another process) goes up first; if that
        fails again nothing new is written, so at most the newest segment is ever pending."""
        if not payloads:
            return []
        with self._lock():
            self._refresh()
            self._upload_pending(now)
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
            intent = {"segment": name, "sha256": sha256_hex(data)}
            self._write_head(*self._tail, pending=intent)  # announces it: see archive.audit.seal
            write_private(self.directory / "segments" / name, data)
            self._write_head(seq, prev)
            self._refresh()  # takes the new segment in (and checks HEAD) like anyone else's
            self._put(name, data, now)
            return records

    def verify(self, *, against_bucket: bool = True) -> ChainReport:
        """Reread and check every segment and HEAD, and that the bucket agrees both ways."""
        try:
            with self._lock(shared=True):
                segments = self._local()
                chained, head, _ = self._check(segments)
                pending: list[str] = []
                if against_bucket:
                    digests = {n: self._digest(n, data) for n, data in segments}
                    pending = self._compare(digests, head, opened=dict(segments))
        except AuditChainError as e:
            return ChainReport(passed=False, events=0, segments=0, reason=str(e))
        events = sum(len(lines) for _, lines in chained)
        reason = f"{events} events chained and intact"
        if pending:
            reason += f"; {pending[0]} awaits its upload (the next append sends it)"
        return ChainReport(True, events, len(segments), reason)

    # --- internals ------------------------------------------------------------------------------

    def _refresh(self) -> None:
        """Check the segments this process has not seen yet, chained onto what it has.

        Segments it had checked are looked at again cheaply: the newest one's size and time on
        every call, all of them at most once a minute (a stat each); a change starts a full
        check over, and every full check is compared with the bucket's listing. An edit that
        keeps size and time is left to :meth:`verify`, which rereads everything."""
        folder = self.directory / "segments"
        names = self._names()
        if self._changed(folder, names):
            self._checked, self._digests, self._records = {}, {}, []
            self._tail, self._compared, self._head_stat = (0, GENESIS), False, None
        fresh = [(n, (folder / n).read_bytes()) for n in names[len(self._checked) :]]
        chained: list[tuple[str, list[dict[str, Any]]]] = []
        head_stat = file_stat(self.directory / "HEAD")
        # HEAD is reread when it or the segments changed: a HEAD one segment behind can only
        # be told from the boundaries of a check that includes that segment.
        if fresh or head_stat != self._head_stat:
            chained, self._head, self._head_behind = self._check(fresh, start=self._tail)
            self._head_stat = head_stat
        records: list[dict[str, Any]] = []
        for (name, lines), (_, data) in zip(chained, fresh, strict=True):
            records += lines
            self._checked[name] = file_stat(folder / name)
            self._digests[name] = self._digest(name, data)
        if records:
            self._tail = (records[-1]["seq"], sha256_hex(canonical(records[-1])))
        self._records += records
        # An unsealed HEAD (from before HEADs were sealed) vouches for nothing: the bucket must.
        if not self._compared or (fresh and not self._head.sealed):
            self._in_bucket = set(self._compare(self._digests, self._head, note=True))
            self._compared = True

    def _compare(
        self,
        digests: Mapping[str, str],
        head: Head,
        *,
        opened: Mapping[str, bytes] | None = None,
        note: bool = False,
    ) -> list[str]:
        """One LIST: the bucket holds exactly the local segments, but for the newest one if a
        sealed HEAD vouches for it (its upload is pending). Returns the pending segments;
        with ``note`` what this process knows to be in the bucket is updated instead."""
        copies = list_copies(self.store, self.prefix)
        opened_with = (self.store, opened) if opened is not None else None
        pending = compare(copies, digests, opened=opened_with)
        if pending and (pending != list(digests)[-1:] or not head.sealed):
            raise AuditChainError(
                f"local {', '.join(pending)} not in the bucket: chained on without a HEAD "
                "sealed by this keyring, it cannot be told from a forged segment and is never "
                "uploaded; compare with the locked bucket copies"
            )
        return [n for n in digests if n in copies] if note else pending

    def _upload_pending(self, now: datetime) -> None:
        """Lock what a failed upload or a killed process left local, after checking it."""
        if set(self._checked) <= self._in_bucket:  # the usual case: no LIST at all
            return
        self._in_bucket = set(self._compare(self._digests, self._head, note=True))
        for name in self._checked:
            if name in self._in_bucket:
                continue
            data = (self.directory / "segments" / name).read_bytes()
            if self._digest(name, data) != self._digests[name]:
                raise AuditChainError(f"{name} changed after it was checked; not uploaded")
            self._put(name, data, now)

    def _changed(self, folder: Path, names: list[str]) -> bool:
        if not self._checked:
            return False
        newest = next(reversed(self._checked))
        if len(names) < len(self._checked) or names[len(self._checked) - 1] != newest:
            return True
        if file_stat(folder / newest) != self._checked[newest]:
            return True
        if time.monotonic() - self._swept < SWEEP_S:
            return False
        self._swept = time.monotonic()
        with os.scandir(folder) as entries:
            seen = {e.name: (e.stat().st_size, e.stat().st_mtime_ns) for e in entries}
        return any(seen.get(n) != stat for n, stat in self._checked.items())

    def _names(self) -> list[str]:
        return segment_names(self.directory / "segments")

    def _local(self) -> list[tuple[str, bytes]]:
        folder = self.directory / "segments"
        return [(n, (folder / n).read_bytes()) for n in self._names()]

    def _check(
        self, segments: list[tuple[str, bytes]], *, start: tuple[int, str] = (0, GENESIS)
    ) -> Checked:
        """Chain-check ``segments`` following the event ``start`` names, then HEAD."""
        out, boundaries = chain_segments(segments, start=start, prefix=self.prefix)
        newest = None
        if segments:
            newest = {"segment": segments[-1][0], "sha256": sha256_hex(segments[-1][1])}
        head, behind = self._check_head(boundaries, newest)
        return out, head, behind

    def _check_head(
        self, boundaries: list[tuple[int, str]], newest: Mapping[str, str] | None
    ) -> tuple[Head, bool]:
        """HEAD names the newest event, or whether it is one segment behind: an append was
        killed after writing its segment and before moving HEAD on. A sealed HEAD is behind
        only by the segment its intent announced (``newest``); one from before sealing by any
        number of segments that chained on, and the bucket must then hold every one of them."""
        path = self.directory / "HEAD"
        if path.exists():
            head = read_head(path, key=self._key, prefix=self.prefix)
        else:  # as if an unsealed HEAD named the genesis
            head = Head(0, GENESIS, None, sealed=False)
        named = (head.seq, head.sha256)
        if named == boundaries[-1]:
            return head, False
        if head.sealed:
            if len(boundaries) > 1 and named == boundaries[-2] and head.pending == newest:
                return head, True
        elif named in boundaries[:-1]:
            return head, True
        raise AuditChainError(
            f"{path} does not name the newest event ({boundaries[-1][0]}): a segment was "
            "chained on, edited or removed outside the archive; compare with the locked bucket "
            "copies"
        )

    def _write_head(self, seq: int, prev: str, *, pending: Mapping[str, str] | None = None) -> None:
        path = self.directory / "HEAD"
        write_head(path, key=self._key, prefix=self.prefix, seq=seq, prev=prev, pending=pending)

    def _digest(self, name: str, data: bytes) -> str:
        return segment_digest(self._key, self.prefix, name, data)

    def _put(self, name: str, data: bytes, now: datetime) -> None:
        until = manifest_retain_until(now, years=self.retain_years)
        key = object_key(self.prefix, name, self._digest(name, data))
        self.store.put_locked(key, data, retain_until=until)
        self._in_bucket.add(name)

    @contextlib.contextmanager
    def _lock(self, *, shared: bool = False) -> Iterator[None]:
        (self.directory / "segments").mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.directory / ".lock", "a+b") as lock:
            # Short critical sections: wait for them. Readers share, an append is exclusive.
            fcntl.flock(lock.fileno(), fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            yield

"""Pass 1 of one large envelope on several cores: the file read as byte ranges, then merged.

A big hospital's day is one ``GIAMDINHHS`` file of hundreds of MB; read whole it is one task,
the longest of pass 1, on one core. :func:`plan` cuts it where a byte search finds a ``<HOSO``
start tag, and counts the ``<HOSO`` of each range, so each range's HOSO get their numbers in the
file without waiting for the ranges before; :func:`index_piece` reads one range
(:meth:`~archive.sources.qd130.envelope.EnvelopeReader.piece`), in a worker; :func:`merge`
joins the ranges into the whole file's :class:`~archive.sources.qd130.index.FileIndex` and the
compact rows of what it found (a 500 MB day's HOSO as objects were a third of the collector's
memory).

A byte search does not parse: a ``<HOSO`` may lie in a comment, a CDATA section or deeper in the
tree, and a file may be broken or hostile anywhere. The pieces are therefore a fast path for the
well-formed file only, never a judge: each range parses only if it begins and ends between the
list's elements (see :mod:`~archive.sources.qd130.envelope`), and must hold exactly the HOSO the
byte search counted; the merged file must pass the whole-file checks. Any failure (a refusal,
a count that disagrees) makes :func:`merge` answer None, and the caller reads the whole file as
before (:func:`~archive.sources.qd130.index.index_file`), which decides what is refused and why,
word for word as it always has. A file that merges is one the whole reading accepts, with the
same HOSO, numbers, byte ranges, facility and refusals.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import IO, Final

from archive.core.errors import SourceError
from archive.sources.model import Window
from archive.sources.qd130.envelope import EnvelopeReader
from archive.sources.qd130.hardening import XmlRefusedError
from archive.sources.qd130.hoso import Limits
from archive.sources.qd130.index import FileIndex, Found, Refusal, file_signature, visit
from archive.sources.qd130.places import Rows
from archive.sources.qd130.signature import FacilityTrust

PIECE_BYTES: Final = 32 << 20  # a range's size (a file of fewer than two is read whole)
_TAG: Final = b"<HOSO"
_START_TAG: Final = re.compile(rb"<HOSO[\s>/]")
_READ: Final = 4 << 20


@dataclass(frozen=True, slots=True)
class Piece:
    """A range of a file, ``start``..``end``, with the ``<HOSO`` counted before and in it."""

    path: Path
    start: int
    end: int
    before: int
    tags: int
    last: bool


@dataclass(frozen=True, slots=True)
class PieceIndex:
    """What pass 1 learnt of one range; ``ok`` False: it did not parse, or held other HOSO
    than the byte search counted (the whole file is then read as one)."""

    ok: bool
    refusals: tuple[Refusal, ...] = ()
    found: tuple[Found, ...] = ()
    count: int = 0
    signed: bool = False
    facility: str | None = None  # the last MACSKCB read in the range
    facility_at: int | None = None  # the HOSO number when the first was (None: none read)
    declared: str | None = None


def plan(path: Path, size: int, *, piece_bytes: int | None = None) -> list[Piece]:
    """The ranges to read ``path`` in (none: read it whole); about ``piece_bytes`` each
    (:data:`PIECE_BYTES` unless given)."""
    parts = size // (piece_bytes or PIECE_BYTES)
    if parts < 2:
        return []
    try:
        with path.open("rb", buffering=0) as handle:
            cuts = [0]
            for k in range(1, parts):
                cut = _next_start_tag(handle, max(cuts[-1] + 1, size * k // parts), size)
                if cut is None:
                    break
                if cut > cuts[-1]:
                    cuts.append(cut)
            cuts.append(size)
            if len(cuts) < 3:
                return []
            counts = [_count(handle, a, b) for a, b in pairwise(cuts)]
    except OSError as e:
        raise SourceError(f"cannot read {path.name} ({e.strerror}): check the disk") from e
    before = [sum(counts[:k]) for k in range(len(counts))]
    n = len(counts)
    return [
        Piece(path, cuts[k], cuts[k + 1], before[k], counts[k], last=k == n - 1) for k in range(n)
    ]


def _next_start_tag(handle: IO[bytes], at: int, size: int) -> int | None:
    """The offset of the first ``<HOSO`` start tag at or after ``at``."""
    while at < size:
        handle.seek(at)
        data = handle.read(_READ + 8)
        found = _START_TAG.search(data)
        if found is not None:
            return at + found.start()
        if len(data) <= _READ:
            return None
        at += _READ
    return None


def _count(handle: IO[bytes], start: int, end: int) -> int:
    """How many ``<HOSO`` lie in ``start``..``end`` (one across two reads too)."""
    handle.seek(start)
    left, found, tail = end - start, 0, b""
    while left > 0 and (chunk := handle.read(min(_READ, left))):
        left -= len(chunk)
        found += (tail + chunk[: len(_TAG) - 1]).count(_TAG) + chunk.count(_TAG)
        tail = chunk[-(len(_TAG) - 1) :]
    return found


def index_piece(piece: Piece, window: Window, limits: Limits) -> PieceIndex:
    """One pool task: pass 1 over the range ``piece``."""
    reader = EnvelopeReader(piece.path.name, max_hoso_bytes=limits.max_hoso_bytes)
    found: list[Found] = []
    refusals: list[Refusal] = []
    first = piece.before + 1
    try:
        with piece.path.open("rb") as stream:
            refs = reader.piece(stream, piece.start, piece.end, first=first, last=piece.last)
            visit(refs, window, limits, found, refusals)
    except XmlRefusedError:
        return PieceIndex(ok=False)
    except OSError as e:
        raise SourceError(f"cannot read {piece.path.name} ({e.strerror}): check the disk") from e
    if reader.count - piece.before != piece.tags:
        return PieceIndex(ok=False)
    facility, facility_at = reader.facility
    return PieceIndex(
        ok=True,
        refusals=tuple(refusals),
        found=tuple(found),
        count=piece.tags,
        signed=reader.signed,
        facility=facility,
        facility_at=facility_at,
        declared=reader.declared,
    )


def merge(
    path: Path, pieces: Iterable[PieceIndex], limits: Limits, trust: FacilityTrust
) -> tuple[FileIndex, Rows] | None:
    """The whole file's index from its ranges', taken in order (each range's result is let go
    once taken, and every one is taken): its refusals and signature, and what it found as
    compact :class:`~archive.sources.qd130.places.Rows`. None when the file must be read whole
    to say what is wrong with it."""
    rows = Rows()
    refusals: list[Refusal] = []
    facility: str | None = None
    declared: str | None = None
    count, signed, ok, k = 0, False, True, -1
    for k, p in enumerate(pieces):
        ok = ok and p.ok
        if not ok:
            continue  # the rest is still taken: the caller's results stay in step
        # A HOSO read before the range's first MACSKCB has the one read before the range.
        for f in p.found:
            late = k > 0 and (p.facility_at is None or f.ordinal <= p.facility_at)
            rows.append(f, facility if late else f.facility)
        refusals += p.refusals
        if p.facility_at is not None:
            facility = p.facility
        declared = p.declared if p.declared is not None else declared
        count += p.count
        signed = signed or p.signed
    if not ok or k < 0:
        return None
    if declared is not None and declared.strip() != str(count):
        return None  # SOLUONGHOSO disagrees: refused, in the whole reading's words
    index = FileIndex(
        path,
        refusals=tuple(refusals),
        whole=count == 1,
        signature=file_signature(path, signed, limits, trust) if rows else None,
    )
    return index, rows

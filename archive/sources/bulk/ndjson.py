"""Reading NDJSON lines by byte offset: stream a file once, read any indexed line back later.

Pass 1 and 2 stream each file and remember a line only as a packed :func:`position` (one ``int``:
offset, length, line number, file), which is what keeps the collector's memory at the size of the
index rather than of the export; pass 3 reads a line back with :func:`read_at` and parses it with
:func:`decode`. Lines longer than the limit are skipped past without being held in memory. A line
that is not a usable resource becomes a :class:`Bad` (reason and PHI-free detail), never an
exception; only an unreadable or changing file raises :class:`SourceError`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, NamedTuple

from archive.core.errors import SourceError
from archive.sources import fhir
from archive.sources.bulk.manifest import ExportFile
from archive.sources.fhir import Ref, Resource
from archive.sources.quarantine import QuarantineReason

R = QuarantineReason


@dataclass(frozen=True, slots=True)
class Line:
    file: ExportFile
    number: int  # 1-based
    offset: int
    raw: bytes  # without the line break; only the first max_line_bytes when oversized
    oversized: int | None  # the full length, when longer than the limit


class Bad(NamedTuple):
    reason: QuarantineReason
    detail: str


class Parsed(NamedTuple):
    resource: Resource
    refs: tuple[Ref, ...]  # every literal reference in it
    text: str


def read_lines(file: ExportFile, limit: int) -> Iterator[Line]:
    """The non-blank lines of ``file``, checked against the manifest's count at the end."""
    count = offset = number = 0
    with open_file(file) as handle:
        while raw := _read(handle, file, limit + 1):
            number += 1
            size, oversized = len(raw), None
            if raw.endswith(b"\n"):
                raw = raw[:-1]
            elif len(raw) > limit:
                size += _skip_rest(handle, file)
                raw, oversized = raw[:limit], size
            if raw.strip():
                count += 1
                yield Line(file, number, offset, raw, oversized)
            offset += size
    if file.expected_count is not None and count != file.expected_count:
        raise SourceError(
            f"{file.name} holds {count} resources but the manifest says {file.expected_count}: "
            "the file is truncated or was changed; fetch the export again"
        )


def open_file(file: ExportFile, *, random: bool = False) -> IO[bytes]:
    # Unbuffered for reading indexed lines back: a seek would throw a large buffer away.
    try:
        return file.path.open("rb", buffering=0 if random else 1 << 18)
    except OSError as e:
        raise SourceError(f"cannot open {file.name} ({e.strerror}): check permissions") from e


def _read(handle: IO[bytes], file: ExportFile, size: int) -> bytes:
    try:
        return handle.readline(size)
    except OSError as e:
        raise SourceError(f"cannot read {file.name} ({e.strerror}): check the disk") from e


def _skip_rest(handle: IO[bytes], file: ExportFile) -> int:
    skipped = 0
    while chunk := _read(handle, file, 1 << 20):
        skipped += len(chunk)
        if chunk.endswith(b"\n"):
            break
    return skipped


def read_at(handle: IO[bytes], file: ExportFile, offset: int, length: int) -> bytes:
    chunks, wanted = [], length
    try:
        handle.seek(offset)
        while wanted > 0 and (chunk := handle.read(wanted)):
            chunks.append(chunk)
            wanted -= len(chunk)
    except OSError as e:
        raise SourceError(f"cannot read {file.name} ({e.strerror}): check the disk") from e
    return b"".join(chunks)


def changed(file: ExportFile, number: int) -> SourceError:
    # Pass 1 parsed this line; if it no longer does, the file changed under us.
    return SourceError(
        f"{file.name} changed while it was being read (line {number}): "
        "collect again from a complete, unchanging export"
    )


def position(line: Line) -> int:
    # One int per indexed line keeps the index small: offset, length, line number, file index.
    return (((line.offset << 32 | len(line.raw)) << 40 | line.number) << 16) | line.file.index


def unpack(packed: int) -> tuple[int, int, int, int]:
    """(file index, line number, length, offset) of a packed position."""
    index, packed = packed & 0xFFFF, packed >> 16
    number, packed = packed & (1 << 40) - 1, packed >> 40
    return index, number, packed & 0xFFFFFFFF, packed >> 32


def parse(line: Line, limit: int) -> Parsed | Bad:
    if line.oversized is not None:
        return Bad(R.OVERSIZED_LINE, f"line of {line.oversized} bytes exceeds {limit}; kept")
    return decode(line.raw, line.file, first=line.number == 1)


def decode(raw: bytes, file: ExportFile, *, first: bool) -> Parsed | Bad:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return Bad(R.MALFORMED_JSON, f"not valid UTF-8 (byte {e.start})")
    try:
        value, refs = fhir.loads(text.removeprefix("\ufeff") if first else text)
    except json.JSONDecodeError as e:
        return Bad(R.MALFORMED_JSON, f"not valid JSON ({e.msg}, column {e.colno})")
    except (ValueError, RecursionError):
        return Bad(R.MALFORMED_JSON, "not valid JSON (NaN/Infinity, huge number or deep nesting)")
    if not isinstance(value, dict):
        return Bad(R.MALFORMED_JSON, f"a JSON {type(value).__name__}, not an object")
    if value.get("resourceType") != file.resource_type:
        return Bad(R.MALFORMED_RESOURCE, f"resourceType is not {file.resource_type}")
    return Parsed(value, refs, text)

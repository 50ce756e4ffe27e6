"""A chain's local segment files: their names, and the hash chain through their lines.

Pure checks on bytes, shared by reading, appending and :meth:`SegmentChain.verify`: each line is
a record carrying ``seq`` (1, 2, ... across all segments) and ``prev`` (sha256 of the previous
line; :data:`GENESIS` for the first), and segments are named ``0000000001.jsonl`` on without gaps.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Final

from archive.core.errors import AuditChainError
from archive.store import sha256_hex

GENESIS: Final = "0" * 64
Chained = list[tuple[str, list[dict[str, Any]]]]


def segment_names(folder: Path) -> list[str]:
    """The segment files in order; a gap, a stray or a renamed file is an AuditChainError."""
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


def chain_segments(
    segments: list[tuple[str, bytes]], *, start: tuple[int, str], prefix: str
) -> tuple[Chained, list[tuple[int, str]]]:
    """The records of ``segments`` chained on from the event ``start`` names, and the
    boundaries (seq, hash of the last line) before the first and after each segment."""
    (seq, prev), out = start, []
    boundaries = [start]  # where HEAD may point: after a whole segment
    for name, data in segments:
        lines = []
        for n, line in enumerate(data.splitlines(), start=1):
            where = f"{prefix}{name} line {n}"
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
    return out, boundaries


def file_stat(path: Path) -> tuple[int, int] | None:
    """Size and mtime: what tells a long-lived process a file changed (None: it is gone)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_size, st.st_mtime_ns


def _parse(line: bytes, where: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError as e:
        raise AuditChainError(f"{where} is not JSON: it was edited or truncated") from e
    if not isinstance(value, dict):
        raise AuditChainError(f"{where} is not a JSON object")
    return value

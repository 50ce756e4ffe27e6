"""Which days of a backfill are done: what lets ``archive --since --until`` stop and resume.

A local append-only JSON-lines file, one line per day run (``done`` or ``failed``, with its
counts); the last line for a day wins. It saves time, it is not what makes the archive right:
the catalog and the bucket are. A day is written ``done`` only after its run catalogued it, so
every way of losing a line (a kill before it, a torn last line, a deleted file) makes the next
backfill run that day again, where everything is found already archived (or adopted) and nothing
is stored or catalogued twice. A torn line can never read as ``done``: it is not valid JSON.

The ledger is per archive and per source (one file under ``<data_dir>/backfill/<key>/``, the key
a hash of the bucket, the catalog directory, the source directory and the facility of a
``--facility`` backfill, so no path shows in it): a day done from one export is not done for
another, nor for another facility of the same export, nor for another bucket. Counts only, no PHI.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Literal

from archive.core.settings import Settings

LEDGER_NAME = "days.jsonl"
DayStatus = Literal["done", "failed"]


@dataclass(frozen=True, slots=True)
class DayMark:
    day: date
    status: DayStatus
    run_id: str
    counts: Mapping[str, int | float]
    reason: str | None = None  # failed: the error's class or the records' reason codes


class DayLedger:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / LEDGER_NAME

    @classmethod
    def for_source(
        cls, settings: Settings, source: Path, *, facility: str | None = None
    ) -> DayLedger:
        """The ledger of backfills from ``source`` into this archive (bucket and catalog), of
        one ``facility``'s encounters or (None) of the whole export."""
        parts = [settings.s3.bucket, str(settings.catalog_dir.resolve()), str(source.resolve())]
        # A whole-export ledger keeps the key it always had, so its backfills resume.
        identity = json.dumps(parts if facility is None else [*parts, facility])
        key = hashlib.sha256(identity.encode()).hexdigest()[:16]
        directory = settings.data_dir / "backfill" / key
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        return cls(directory)

    def marks(self) -> dict[date, DayMark]:
        """The last mark of each day; lines that do not parse (a torn write) are skipped."""
        out: dict[date, DayMark] = {}
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return out
        for line in text.splitlines():
            mark = _parse(line)
            if mark is not None:
                out[mark.day] = mark
        return out

    def pending(self, days: Sequence[date], *, redo: bool = False) -> list[date]:
        """Of ``days``, those still to run: every one without a ``done`` mark (never run, failed,
        interrupted); all of them when ``redo``."""
        if redo:
            return list(days)
        done = {d for d, m in self.marks().items() if m.status == "done"}
        return [d for d in days if d not in done]

    def mark(self, mark: DayMark, *, at: datetime) -> None:
        """Append one day's mark and flush it to disk before the next day starts."""
        line = {
            "day": mark.day.isoformat(),
            "status": mark.status,
            "run_id": mark.run_id,
            "counts": dict(mark.counts),
            "reason": mark.reason,
            "at": at.isoformat(),
        }
        data = (json.dumps(line, sort_keys=True) + "\n").encode()
        # A new line starts on a line of its own even after a torn one: prefix a newline when
        # the file does not end with one (the torn line then stays unparsable, alone).
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            if os.fstat(fd).st_size and not _ends_with_newline(self.path):
                data = b"\n" + data
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def _parse(line: str) -> DayMark | None:
    try:
        raw = json.loads(line)
        status = raw["status"]
        if status not in ("done", "failed"):
            return None
        return DayMark(
            day=date.fromisoformat(raw["day"]),
            status=status,
            run_id=str(raw["run_id"]),
            counts=dict(raw.get("counts") or {}),
            reason=raw.get("reason"),
        )
    except (ValueError, KeyError, TypeError):
        return None

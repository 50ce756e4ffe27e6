"""The last verification outcome of each encounter, as the search index shows it beside a hit.

Folded from the verification log's run files (``verification/log/*.parquet``) the index has not
seen yet: one row per encounter, the newest outcome winning. Each row carries a keyed MAC
(:func:`retrieval.index_seal.verification_mac`) checked on every row a query returns: an edited
status ("failed" made "passed") or a row planted for an encounter never verified makes the whole
log be folded again before the answer. Left: a row deleted, or put back to an earlier sealed
outcome of the same encounter, is not noticed until the table is folded again (a row failing its
seal, or a new index).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import pyarrow.parquet as pq

from archive.core.errors import CatalogError
from retrieval.index_file import as_time, chunks, micros
from retrieval.index_seal import verification_mac, verification_ok

_COLUMNS: Final = ["encounter_id", "verified_at", "status", "reason_code", "run_id"]
_UPSERT: Final = (
    "INSERT INTO verification VALUES (?,?,?,?,?,?) ON CONFLICT(encounter_id) DO "
    "UPDATE SET verified_at=excluded.verified_at, status=excluded.status, "
    "reason_code=excluded.reason_code, run_id=excluded.run_id, mac=excluded.mac "
    "WHERE excluded.verified_at >= verification.verified_at"
)


@dataclass(frozen=True, slots=True)
class LastVerification:
    verified_at: datetime
    status: str  # passed | failed | indeterminate
    reason_code: str
    run_id: str


class VerificationOutcomes:
    """The ``verification`` table of the index file; the caller's lock guards the connection."""

    def __init__(self, db: sqlite3.Connection, lock: threading.RLock, *, seal_key: bytes) -> None:
        self._db = db
        self._lock = lock
        self._key = seal_key
        self._log_dir: Path | None = None  # the log last folded: what a refold reads

    def sync(self, log_dir: Path) -> int:
        """Fold run files of the verification log the index has not seen yet."""
        with self._lock:
            return self._sync(log_dir)

    def _sync(self, log_dir: Path) -> int:
        self._log_dir = log_dir
        seen = {r[0] for r in self._db.execute("SELECT name FROM verification_runs")}
        added = 0
        for path in sorted(log_dir.glob("*.parquet")):
            if path.name in seen:
                continue
            rows = pq.read_table(path, columns=_COLUMNS).to_pylist()
            with self._db:
                outcomes = [_outcome(r) for r in rows]
                self._db.executemany(
                    _UPSERT, [(*v, verification_mac(self._key, v)) for v in outcomes]
                )
                self._db.execute("INSERT INTO verification_runs VALUES (?)", (path.name,))
            added += len(rows)
        return added

    def last(self, encounter_ids: Sequence[str]) -> dict[str, LastVerification]:
        out: dict[str, LastVerification] = {}
        for chunk in chunks(list(encounter_ids), 500):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT * FROM verification WHERE encounter_id IN ({marks})"  # noqa: S608
            with self._lock:
                found = self._db.execute(sql, chunk).fetchall()
                if not all(verification_ok(self._key, r[:-1], r[-1]) for r in found):
                    found = self._refolded_answer(sql, chunk)
            for eid, at, status, code, run, _ in found:
                out[eid] = LastVerification(as_time(at), status, code, run)
        return out

    def _refolded_answer(self, sql: str, args: Sequence[object]) -> list[Any]:
        """A row failed its seal (a status edited, a row planted): fold the whole verification
        log again, then answer from it."""
        if self._log_dir is None:
            raise CatalogError(
                "the search index holds a verification outcome that fails its seal (altered "
                "outside the archive) and no verification log was synced: delete the index"
            )
        with self._db:
            self._db.execute("DELETE FROM verification")
            self._db.execute("DELETE FROM verification_runs")
        self._sync(self._log_dir)
        rows = self._db.execute(sql, args).fetchall()
        if not all(verification_ok(self._key, r[:-1], r[-1]) for r in rows):
            raise CatalogError("the refolded verification outcomes fail their seal")
        return list(rows)


def _outcome(row: dict[str, Any]) -> tuple[str, int, str, str, str]:
    """A verification log row as the index stores (and seals) it."""
    at = micros(row["verified_at"])
    return row["encounter_id"], at, row["status"], row["reason_code"], row["run_id"]

"""The verification log: one Parquet file per run, one row per verified record, streamed as the
run goes and published atomically at its end.

``<data_dir>/verification/log/<run_id>.parquet``; read all runs as one dataset with
:func:`read_log` (history of a record: filter on ``encounter_id``). A row names the record by
encounter id and pseudonym only, like the catalog. The archive-wide results of the run go to
``runs/<run_id>.json`` beside it (see :mod:`verification.run`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from archive.core.atomic import atomic_writer
from verification.results import RecordResult

_TS = pa.timestamp("us", tz="UTC")
LOG_SCHEMA: Final = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("verified_at", _TS, nullable=False),
        pa.field("mode", pa.string(), nullable=False),
        pa.field("encounter_id", pa.string(), nullable=False),
        pa.field("patient_pseudonym", pa.string(), nullable=False),
        pa.field("archive_day", pa.string(), nullable=False),
        pa.field("object_key", pa.string(), nullable=False),
        pa.field("version_id", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("reason_code", pa.string(), nullable=False),
        pa.field("message", pa.string(), nullable=False),
        pa.field("checks", pa.string(), nullable=False),  # JSON: [{check,status,reason_code}]
        pa.field("renewal_due", pa.bool_(), nullable=False),
        pa.field("renewal_reason", pa.string()),
        pa.field("tsa_cert_not_after", _TS),
        pa.field("seconds", pa.float64(), nullable=False),
    ]
)


def log_dir(directory: Path) -> Path:
    return directory / "log"


class LogWriter:
    """This run's rows streamed into ``log/<run_id>.parquet`` as records are verified, a row
    group every :attr:`GROUP` rows: memory holds one group, not the run. The file appears only
    at :meth:`close`: private (0600; rows name encounters and pseudonyms), through a temporary
    file (``.<name>.<random>.tmp``, skipped by :func:`read_log`), fsync and rename. A run that
    fails, or :meth:`abort`, leaves no log."""

    GROUP = 4096

    def __init__(self, directory: Path, *, run_id: str, mode: str, verified_at: datetime) -> None:
        self.path = log_dir(directory) / f"{run_id}.parquet"
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._run_id, self._mode, self._verified_at = run_id, mode, verified_at
        self._stack = contextlib.ExitStack()
        sink = self._stack.enter_context(atomic_writer(self.path))
        self._writer = pq.ParquetWriter(sink, LOG_SCHEMA, compression="zstd")
        self._rows: list[dict[str, Any]] = []

    def add(self, results: Iterable[RecordResult]) -> None:
        at = self._verified_at
        self._rows += (
            _row(r, run_id=self._run_id, mode=self._mode, verified_at=at) for r in results
        )
        if len(self._rows) >= self.GROUP:
            self._flush()

    def close(self) -> Path:
        """Publish the log; returns its path."""
        self._flush()
        self._writer.close()
        self._stack.close()
        return self.path

    def abort(self, exc: BaseException | None = None) -> None:
        """Drop the unfinished log (its temporary file is removed)."""
        with contextlib.suppress(Exception):
            self._writer.close()
        error = exc or RuntimeError("verification log abandoned")
        tb: TracebackType | None = error.__traceback__
        with contextlib.suppress(Exception):
            self._stack.__exit__(type(error), error, tb)

    def _flush(self) -> None:
        if self._rows:
            self._writer.write_table(pa.Table.from_pylist(self._rows, schema=LOG_SCHEMA))
            self._rows = []


def write_log(
    directory: Path,
    results: Iterable[RecordResult],
    *,
    run_id: str,
    mode: str,
    verified_at: datetime,
) -> Path:
    """Write ``results`` as this run's log at once (see :class:`LogWriter`)."""
    writer = LogWriter(directory, run_id=run_id, mode=mode, verified_at=verified_at)
    try:
        writer.add(results)
    except BaseException as e:
        writer.abort(e)
        raise
    return writer.close()


def read_log(directory: Path) -> Any:
    """Every run's rows as one ``pyarrow.Table`` (temp files of interrupted writes ignored)."""
    files = sorted(str(p) for p in log_dir(directory).glob("*.parquet"))
    return ds.dataset(files, schema=LOG_SCHEMA, format="parquet").to_table()


def _row(r: RecordResult, *, run_id: str, mode: str, verified_at: datetime) -> dict[str, Any]:
    reason = r.reason
    return {
        "run_id": run_id,
        "verified_at": verified_at,
        "mode": mode,
        "encounter_id": r.encounter_id,
        "patient_pseudonym": r.patient_pseudonym,
        "archive_day": r.archive_day,
        "object_key": r.object_key,
        "version_id": r.version_id,
        "status": r.status.value,
        "reason_code": reason.reason_code,
        "message": reason.message,
        "checks": json.dumps(
            [
                {"check": c.check, "status": c.status.value, "reason_code": c.reason_code}
                for c in r.checks
            ]
        ),
        "renewal_due": r.renewal is not None,
        "renewal_reason": r.renewal.reason_code if r.renewal else None,
        "tsa_cert_not_after": r.renewal.tsa_cert_not_after if r.renewal else None,
        "seconds": round(r.seconds, 6),
    }

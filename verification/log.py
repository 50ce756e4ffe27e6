"""The verification log: one Parquet file per run, one row per verified record, written atomically.

``<data_dir>/verification/log/<run_id>.parquet``; read all runs as one dataset with
:func:`read_log` (history of a record: filter on ``encounter_id``). A row names the record by
encounter id and pseudonym only, like the catalog. The archive-wide results of the run go to
``runs/<run_id>.json`` beside it (see :mod:`verification.run`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from archive.core.atomic import write_private
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


def write_log(
    directory: Path,
    results: Sequence[RecordResult],
    *,
    run_id: str,
    mode: str,
    verified_at: datetime,
) -> Path:
    """Write this run's rows as ``log/<run_id>.parquet``: private (0600; rows name encounters
    and pseudonyms), through a temp file, fsync and rename."""
    rows = [_row(r, run_id=run_id, mode=mode, verified_at=verified_at) for r in results]
    table = pa.Table.from_pylist(rows, schema=LOG_SCHEMA)
    target = log_dir(directory) / f"{run_id}.parquet"
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    write_private(target, sink.getvalue().to_pybytes())
    return target


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

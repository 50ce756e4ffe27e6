"""The search index's SQLite file: its tables, its layout version, its modes, and the conversions
between catalog values and what the file stores.

One file, ``<data_dir>/index/search.sqlite``, in WAL mode with one connection shared by the
portal's threads (the caller holds the lock). It is created 0600 before SQLite opens it, because
SQLite gives the ``-wal`` and ``-shm`` files the database file's mode at the moment it creates
them (a chmod after connecting left them 0644). A file of another layout is emptied, so the next
sync rebuilds it from the catalog and the verification log.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

COLUMNS: Final = (
    "encounter_id",
    "patient_pseudonym",
    "facility",
    "admitted_at",
    "discharged_at",
    "retention_class",
    "retain_until",
    "object_key",
    "version_id",
    "pdf_sha256",
    "signed_at",
    "run_id",
)
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
TIMES: Final = frozenset({"admitted_at", "discharged_at", "retain_until", "signed_at"})
INSERT: Final = "INSERT INTO records VALUES (" + ",".join("?" * (len(COLUMNS) + 2)) + ")"  # noqa: S608
# PRAGMA user_version: 2 = rows sealed, 3 = verification rows too; an older file is rebuilt
LAYOUT: Final = 3
INDEXES: Final = {
    "by_encounter": "records (encounter_id)",
    "by_patient": "records (patient_pseudonym)",
    # The whole ORDER BY in the index: a range query walks it in order and stops at its LIMIT
    # (500 row reads) instead of fetching and sorting every match (28,000 for a facility's
    # week on 10M rows: p95 0.7 s before).
    "by_facility": "records (facility, discharged_at, encounter_id, seq)",
    "by_class": "records (retention_class, discharged_at, encounter_id, seq)",
}
SCHEMA = """
CREATE TABLE IF NOT EXISTS manifests (seq INTEGER PRIMARY KEY, sha256 TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER NOT NULL, encounter_id TEXT NOT NULL, patient_pseudonym TEXT NOT NULL,
    facility TEXT NOT NULL, admitted_at INTEGER NOT NULL, discharged_at INTEGER NOT NULL,
    retention_class TEXT NOT NULL, retain_until INTEGER NOT NULL, object_key TEXT NOT NULL,
    version_id TEXT NOT NULL, pdf_sha256 TEXT NOT NULL, signed_at INTEGER NOT NULL,
    run_id TEXT NOT NULL, mac BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS verification_runs (name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS verification (
    encounter_id TEXT PRIMARY KEY, verified_at INTEGER NOT NULL, status TEXT NOT NULL,
    reason_code TEXT NOT NULL, run_id TEXT NOT NULL, mac BLOB NOT NULL);
"""
TABLES: Final = ("manifests", "records", "verification_runs", "verification")


def connect(path: Path) -> sqlite3.Connection:
    """Open (or create, 0600) the index file at the current layout, its B-trees in place."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    for existing in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):  # older files too
        if existing.exists():
            existing.chmod(0o600)
    db = sqlite3.connect(path, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA cache_size=-16000")  # 16 MiB page cache: the memory bound
    layout = db.execute("PRAGMA user_version").fetchone()[0]
    if layout != LAYOUT:
        # Layout 2 lacks only the verification rows' seal: those are folded again from the log,
        # the sealed records (minutes to rebuild at ten million rows) stay. Older: start over.
        stale = TABLES[2:] if layout == 2 else TABLES
        with db:
            for table in stale:
                db.execute(f"DROP TABLE IF EXISTS {table}")
            db.execute(f"PRAGMA user_version={LAYOUT}")
    db.executescript(SCHEMA)
    create_indexes(db)
    return db


def create_indexes(db: sqlite3.Connection) -> None:
    with db:
        for name, on in INDEXES.items():
            db.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {on}")


def drop_indexes(db: sqlite3.Connection) -> None:
    with db:
        for name in INDEXES:
            db.execute(f"DROP INDEX IF EXISTS {name}")


def micros(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int((value - EPOCH) // timedelta(microseconds=1))


def as_time(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


@contextlib.contextmanager
def cursor(db: sqlite3.Connection) -> Iterator[sqlite3.Cursor]:
    cur = db.cursor()
    try:
        yield cur
    finally:
        cur.close()

"""Which manifests hold an encounter: a small rebuildable SQLite side index beside the manifests.

An archive run must know, for each encounter it collects, whether the catalog already holds it and
with which data (adoption of what is archived, amendments). Holding every encounter id of a ten
million row catalog in a Python set costs over a GiB and a minute at every start; scanning the
``encounter_id`` column per batch costs seconds per batch. ``<catalog_dir>/lookup.sqlite`` maps
each encounter id to the manifests (sequence numbers) holding it, in a B-tree: a look-up reads a
few pages, the page cache is capped at 8 MiB, and each new manifest is one incremental insert.

It is a cache, never a source of truth; what it could get wrong is caught or harmless:

- it records which manifests it holds (seq, sha256, row count) and how many entries each gave;
  if the verified chain does not start with exactly those manifests (another or a rebuilt
  catalog, a stale copy), or the entries present differ in number (entries deleted or added), it
  is emptied and rebuilt;
- it only says *where to look*: the values (data hashes, signing times) are read from the named
  manifests, and an entry the manifest does not confirm (a tampered id or sequence number) makes
  it rebuild and answer again from scratch;
- an unreadable file is deleted and rebuilt.

Residual risk: the index is not keyed, so a deliberate rewrite that keeps it consistent with
itself - an entry's id changed to one never asked for, or entries deleted together with the
recorded counts - hides those ids (the run would then archive such an encounter again as new, in
a new row beside the old one; nothing is lost or overwritten); an export, which knows from the
sealed search index that the encounter is catalogued, then reads it with a scan of every manifest
(:func:`retrieval.service.export.catalogued_rows`). Deleting ``lookup.sqlite`` is always safe.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Collection
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import pyarrow.compute as pc

from archive.catalog import reader
from archive.catalog.chain import ManifestInfo
from archive.catalog.manifests import Catalog
from archive.core.errors import CatalogError

LOOKUP_FILE: Final = "lookup.sqlite"
_CHUNK: Final = 500  # ids per IN (...) query: below SQLite's variable limit
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS manifests (
    seq INTEGER PRIMARY KEY, sha256 TEXT NOT NULL, row_count INTEGER NOT NULL,
    entries INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS entries (encounter_id TEXT NOT NULL, seq INTEGER NOT NULL);
"""
# Unique: an entry moved onto a pair that exists already (which would leave the count alone and
# drop a version from the answers) is refused, and a copy that holds one twice is rebuilt.
_INDEX: Final = "CREATE UNIQUE INDEX IF NOT EXISTS by_id ON entries (encounter_id, seq)"


class _MismatchError(CatalogError):
    """The index named a manifest that does not hold the id: it is rebuilt (never escapes,
    unless the manifests changed under a fresh index too)."""


class EncounterLookup:
    """Open with :meth:`open` (which brings the index up to the catalog's chain)."""

    def __init__(self, catalog: Catalog, path: Path) -> None:
        self._catalog = catalog
        self.path = path
        self._db = _connect(path)
        self.rebuilt = False  # whether the last sync had to start from nothing

    @classmethod
    def open(cls, catalog: Catalog) -> EncounterLookup:
        path = catalog.directory / LOOKUP_FILE
        try:
            lookup = cls(catalog, path)
            lookup.sync()
        except sqlite3.OperationalError as e:  # locked by another run for too long, disk full
            raise CatalogError(
                f"the catalog look-up index {path} cannot be used ({type(e).__name__}): retry "
                "when no other archive run is starting; deleting the file is always safe"
            ) from e
        except sqlite3.DatabaseError:  # not a database, or a damaged one: it is only a cache
            _remove(path)
            lookup = cls(catalog, path)
            lookup.sync()
        return lookup

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> EncounterLookup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- keeping up with the chain ---------------------------------------------------------------

    def sync(self) -> int:
        """Index the manifests the index lacks; start over if it is not the catalog's prefix.
        Returns the number of entries added."""
        rows = self._db.execute(
            "SELECT seq, sha256, row_count, entries FROM manifests ORDER BY seq"
        ).fetchall()
        held = [(r[0], r[1], r[2]) for r in rows]
        chain = [(m.seq, m.sha256, m.row_count) for m in self._catalog.manifests]
        entries = int(self._db.execute("SELECT count(*) FROM entries").fetchone()[0])
        if held != chain[: len(held)] or entries != sum(r[3] for r in rows):
            self._reset()
            held = []
        added, todo = 0, self._catalog.manifests[len(held) :]
        bulk = not held and len(todo) > 1
        if bulk:  # one sort when the load is done: far faster than growing a B-tree at random
            self._db.execute("DROP INDEX IF EXISTS by_id")
        for info in todo:
            added += self._ingest(info)
        self._db.execute(_INDEX)
        return added

    def _ingest(self, info: ManifestInfo) -> int:
        ids: set[str] = set()  # an encounter twice in one manifest is one entry
        for table in reader.batches(self._catalog, columns=["encounter_id"], seqs=[info.seq]):
            ids.update(table.column(0).to_pylist())
        with self._db:
            self._db.executemany(
                "INSERT INTO entries VALUES (?, ?)", ((i, info.seq) for i in sorted(ids))
            )
            self._db.execute(
                "INSERT INTO manifests VALUES (?, ?, ?, ?)",
                (info.seq, info.sha256, info.row_count, len(ids)),
            )
        return len(ids)

    def _reset(self) -> None:
        self.rebuilt = True
        with self._db:
            self._db.execute("DELETE FROM manifests")
            self._db.execute("DELETE FROM entries")

    # --- questions -------------------------------------------------------------------------------

    def __contains__(self, encounter_id: object) -> bool:
        """Whether the index names the encounter (a hint: confirm with :meth:`data_versions`)."""
        row = self._db.execute(
            "SELECT 1 FROM entries WHERE encounter_id = ? LIMIT 1", (encounter_id,)
        ).fetchone()
        return row is not None

    def data_versions(self, encounter_ids: Collection[str]) -> dict[str, list[str]]:
        """As :meth:`Catalog.data_versions` - every catalogued ``data_sha256`` of each id, oldest
        signature first - read from the manifests the index names, and only those."""
        try:
            return self._versions(encounter_ids)
        except _MismatchError:
            self._reset()
            self.sync()
            return self._versions(encounter_ids)

    def rows(self, encounter_id: str) -> list[dict[str, Any]]:
        """As :meth:`Catalog.find` - every catalogued row of the encounter, all columns, oldest
        manifest first - read from the manifests the index names, and only those. Every row
        comes from a manifest and carries this encounter id; an id the index does not name (a
        new one, or one rewritten in the index) gives ``[]``: a caller that was told the
        encounter is catalogued then asks :meth:`Catalog.find`."""
        try:
            return self._rows(encounter_id)
        except _MismatchError:
            self._reset()
            self.sync()
            return self._rows(encounter_id)

    def _rows(self, encounter_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for seq in sorted(self._where([encounter_id])):
            held: list[dict[str, Any]] = []
            where = pc.field("encounter_id") == encounter_id
            for table in reader.batches(self._catalog, where=where, seqs=[seq]):
                held += table.to_pylist()
            if not held:
                raise _MismatchError(f"the look-up index names manifest {seq} for an id it lacks")
            found += held
        return found

    def longest_locks(self, encounter_ids: Collection[str]) -> dict[str, tuple[str, datetime]]:
        """Each id's catalogued version with the longest lock: its class and date (an amendment
        is never locked shorter, :mod:`archive.pipeline.amendments`), read from the manifests
        the index names, and only those; an id the index does not name is absent."""
        try:
            rows = self._columns(encounter_ids, ["retain_until", "retention_class"])
        except _MismatchError:
            self._reset()
            self.sync()
            rows = self._columns(encounter_ids, ["retain_until", "retention_class"])
        found: dict[str, tuple[str, datetime]] = {}
        for eid, until, class_id in sorted(rows, key=lambda r: (r[0], r[1])):
            found[eid] = (class_id, until)  # the last: the longest
        return found

    def _versions(self, encounter_ids: Collection[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        rows = self._columns(encounter_ids, ["signed_at", "data_sha256"])
        for eid, _, sha in sorted(rows, key=lambda r: (r[0], r[1])):
            found.setdefault(eid, []).append(sha)
        return found

    def _columns(self, encounter_ids: Collection[str], columns: list[str]) -> list[tuple[Any, ...]]:
        """``(encounter_id, *columns)`` of every catalogued row of the ids."""
        rows: list[tuple[Any, ...]] = []
        for seq, ids in sorted(self._where(encounter_ids).items()):
            held: list[tuple[Any, ...]] = []
            for table in reader.batches(
                self._catalog,
                columns=["encounter_id", *columns],
                where=pc.field("encounter_id").isin(sorted(ids)),
                seqs=[seq],
            ):
                held += zip(*(c.to_pylist() for c in table.columns), strict=True)
            if {r[0] for r in held} != ids:
                raise _MismatchError(f"the look-up index names manifest {seq} for ids it lacks")
            rows += held
        return rows

    def _where(self, encounter_ids: Collection[str]) -> dict[int, set[str]]:
        """The manifests the index names for ``encounter_ids``: seq -> ids."""
        where: dict[int, set[str]] = {}
        ids = sorted(set(encounter_ids))
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT encounter_id, seq FROM entries WHERE encounter_id IN ({marks})"  # noqa: S608
            for eid, seq in self._db.execute(sql, chunk):
                where.setdefault(int(seq), set()).add(eid)
        return where


def _connect(path: Path) -> sqlite3.Connection:
    try:
        # 0600 before SQLite opens it: its journal files take the database file's mode.
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
        os.chmod(path, 0o600)  # encounter ids, like the manifests
        db = sqlite3.connect(path, timeout=120)  # another run may be indexing a manifest
        db.execute("PRAGMA cache_size=-8000")  # 8 MiB page cache: the memory bound
        db.executescript(_SCHEMA)
    except OSError as e:
        raise CatalogError(
            f"could not open the catalog look-up index {path} ({e.strerror or type(e).__name__}):"
            " check that the catalog directory is writable"
        ) from e
    return db


def _remove(path: Path) -> None:
    for suffix in ("", "-journal", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}{suffix}")

"""The catalog as the archive-wide checks compare it, on disk for one verification run.

The inventory (every catalogued version in the bucket, nothing else there) and the replica check
(each key's newest row at the second site) compare the whole catalog with whole listings. Held as
Python sets and dicts that took ~2 GiB per million rows; here they are tables of a throwaway
SQLite file in a private temporary directory, filled batch by batch from
:func:`verification.select.marked` and the store's listing, indexed once when filled (a sort,
not millions of random inserts) and read back in the order the in-memory comparison produced,
so that findings come out the same and in the same order. Memory stays at a batch and SQLite's
page cache, whatever the catalog's size.

Object keys and version ids carry no PHI (archive.store.naming); the replica check's rows also
hold encounter ids (for the expected legal hold), as the verification log does: the directory is
private (0700) and deleted once the run has started.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa

from archive.store import RECORDS_PREFIX, ObjectVersion

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CHUNK = 10_000  # listed versions per insert
_CACHE_KIB = 32 * 1024  # SQLite's page cache: the index's share of memory


class Newest(NamedTuple):
    """A key's newest catalog row, as the replica check needs it."""

    object_key: str
    sealed_sha256: str
    retain_until: datetime
    encounter_id: str  # for the legal hold expected on it


class Listed(NamedTuple):
    """A listed version under ``records/`` and what the catalog knows of it."""

    object_key: str
    version_id: str
    is_delete_marker: bool
    catalogued: bool  # this very (key, version) pair
    key_catalogued: bool  # some version of the key


class CatalogIndex:
    """Fill with :meth:`add` (catalog batches), then :meth:`add_listing` once; then read."""

    def __init__(self, *, newest: bool = False) -> None:
        """``newest``: keep each key's newest row too (the replica check's input)."""
        self._dir = tempfile.TemporaryDirectory(prefix="emr-verify-index-")  # 0700
        self._db = sqlite3.connect(Path(self._dir.name) / "index.sqlite")
        self._newest = newest
        self.rows = 0  # catalog rows added
        self.picked = 0  # of which the selection verifies one by one
        for pragma in (
            "journal_mode=OFF",  # a throwaway file: nothing to recover after a crash
            "synchronous=OFF",
            f"cache_size=-{_CACHE_KIB}",
            "temp_store=FILE",  # index builds and ORDER BY spill to disk, not to memory
        ):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.executescript(
            """
            CREATE TABLE pairs (key TEXT NOT NULL, version TEXT NOT NULL, picked INTEGER);
            CREATE TABLE rows (pos INTEGER PRIMARY KEY, key TEXT NOT NULL, sha TEXT,
                               until INTEGER, encounter TEXT);
            CREATE TABLE listed (seq INTEGER PRIMARY KEY, key TEXT NOT NULL,
                                 version TEXT NOT NULL, marker INTEGER);
            """
        )
        self._indexed = False

    def __enter__(self) -> CatalogIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()
        self._dir.cleanup()

    def add(self, table: Any, picked: Any) -> None:
        """One batch of :data:`verification.select.MARK_COLUMNS` rows, oldest first, and which
        of them the run verifies one by one."""
        keys = table.column("object_key").to_pylist()
        flags = picked.to_pylist()
        self._db.executemany(
            "INSERT INTO pairs VALUES (?, ?, ?)",
            zip(keys, table.column("version_id").to_pylist(), flags, strict=True),
        )
        if self._newest:
            until = table.column("retain_until").cast(pa.int64()).to_pylist()  # µs since epoch
            self._db.executemany(
                "INSERT INTO rows VALUES (?, ?, ?, ?, ?)",
                zip(
                    range(self.rows, self.rows + len(keys)),
                    keys,
                    table.column("sealed_sha256").to_pylist(),
                    until,
                    table.column("encounter_id").to_pylist(),
                    strict=True,
                ),
            )
        self.rows += len(keys)
        self.picked += sum(flags)

    def add_listing(self, versions: Iterable[ObjectVersion]) -> None:
        """The bucket's versions (those under ``records/`` are kept), in listing order."""
        chunk: list[tuple[str, str, bool]] = []
        for v in versions:
            if v.key.startswith(RECORDS_PREFIX):
                chunk.append((v.key, v.version_id, v.is_delete_marker))
            if len(chunk) >= _CHUNK:
                self._listed(chunk)
                chunk = []
        self._listed(chunk)
        self._index()

    def _listed(self, chunk: list[tuple[str, str, bool]]) -> None:
        self._db.executemany("INSERT INTO listed (key, version, marker) VALUES (?, ?, ?)", chunk)

    def _index(self) -> None:
        if not self._indexed:
            self._db.executescript(
                """
                CREATE INDEX pairs_kv ON pairs (key, version, picked);
                CREATE INDEX listed_kv ON listed (key, version);
                CREATE INDEX rows_kp ON rows (key, pos);
                """
            )
            self._indexed = True

    # -- read back ---------------------------------------------------------------------------

    def pair_count(self) -> int:
        """Distinct catalogued (key, version) pairs."""
        self._index()
        return int(self._one("SELECT count(*) FROM (SELECT DISTINCT key, version FROM pairs)"))

    def listed(self) -> Iterator[Listed]:
        """The listed record versions, in listing order, with what the catalog knows of each."""
        cursor = self._db.execute(
            """
            SELECT l.key, l.version, l.marker,
                   EXISTS (SELECT 1 FROM pairs p WHERE p.key = l.key AND p.version = l.version),
                   EXISTS (SELECT 1 FROM pairs p WHERE p.key = l.key)
            FROM listed l ORDER BY l.seq
            """
        )
        for key, version, marker, pair, known in cursor:
            yield Listed(key, version, bool(marker), bool(pair), bool(known))

    def missing(self) -> Iterator[tuple[str, str]]:
        """Catalogued pairs the listing lacks and the run does not verify one by one, sorted."""
        self._index()
        yield from self._db.execute(
            """
            SELECT key, version FROM pairs p GROUP BY key, version
            HAVING max(picked) = 0 AND NOT EXISTS (
                SELECT 1 FROM listed l WHERE l.key = p.key AND l.version = p.version)
            ORDER BY key, version
            """
        )

    def unlisted_keys(self) -> set[str]:
        """Keys with a catalogued version the listing lacks (verified or not)."""
        self._index()
        cursor = self._db.execute(
            """
            SELECT DISTINCT key FROM pairs p WHERE NOT EXISTS (
                SELECT 1 FROM listed l WHERE l.key = p.key AND l.version = p.version)
            """
        )
        return {key for (key,) in cursor}

    def newest(self) -> Iterator[Newest]:
        """Each key's newest row (the last in catalog order), keys in order of first appearance
        (the order of a dict filled row by row)."""
        self._index()
        cursor = self._db.execute(
            """
            SELECT r.key, r.sha, r.until, r.encounter FROM (
                SELECT key, min(pos) AS first, max(pos) AS last FROM rows GROUP BY key
            ) g JOIN rows r ON r.pos = g.last ORDER BY g.first
            """
        )
        for key, sha, until, encounter in cursor:
            yield Newest(key, sha, _EPOCH + timedelta(microseconds=until), encounter)

    def _one(self, sql: str) -> Any:
        return self._db.execute(sql).fetchone()[0]

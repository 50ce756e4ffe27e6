"""The search index: a derived SQLite file built from the verified catalog, rebuildable any time.

``<data_dir>/index/search.sqlite`` (beside the catalog directory, like the audit log). Why SQLite
and not re-sorted Parquet: a B-tree answers a point look-up (encounter id, pseudonym) in well
under a millisecond on a million rows while reading a few pages, so memory stays bounded whatever
the catalog's size (the page cache is capped at 16 MiB); it is in the standard library; and it
updates incrementally (a new manifest is an INSERT, not a rewrite of sorted files). The catalog
stays the authority:

- only manifests the catalog has verified are ingested, and each file is hashed again and must
  equal the sha256 its chain records before its rows go in;
- the index remembers which manifests (seq, sha256) it holds; if the catalog's chain no longer
  starts with them (a rebuilt or different catalog), the index is dropped and rebuilt;
- the last verification outcome per encounter is folded from ``verification/log/*.parquet`` run
  files it has not seen yet, each row sealed too (:mod:`retrieval.index_outcomes`);
- every row carries a keyed MAC (:mod:`retrieval.index_seal`) checked on every row a query
  returns, and the row count must equal what the chain's manifests hold: an edited, planted or
  deleted row makes the index rebuild itself from the manifests before it answers (a deletion at
  the next sync: a new manifest, or the service's start). Left: an edit of a *searched* column
  hides that row from searches on its true value until the index is next rebuilt; whatever a
  search returns is as catalogued.

The file itself - tables, layout, modes - is :mod:`retrieval.index_file`. Deleting ``index/`` is
always safe: the next :meth:`SearchIndex.sync` rebuilds it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from archive.catalog import MANIFESTS_DIR, Catalog
from archive.core.errors import CatalogError
from archive.store import sha256_hex
from retrieval.index_file import (
    COLUMNS,
    INSERT,
    TIMES,
    as_time,
    connect,
    create_indexes,
    cursor,
    drop_indexes,
    micros,
)
from retrieval.index_outcomes import LastVerification, VerificationOutcomes
from retrieval.index_seal import row_mac, row_ok

__all__ = ["COLUMNS", "LastVerification", "SearchIndex"]


class SearchIndex:
    """Open with :meth:`open`; :meth:`sync` before querying; queries return catalog-row dicts."""

    def __init__(self, path: Path, *, seal_key: bytes) -> None:
        self.path = path
        self._key = seal_key  # retrieval.index_seal.index_key(keyring.chain_key())
        self._catalog: Catalog | None = None  # the one last synced: what a rebuild reads
        self._lock = threading.RLock()  # one connection, shared by the portal's threads
        self._db = connect(path)
        self._outcomes = VerificationOutcomes(self._db, self._lock, seal_key=seal_key)

    @classmethod
    def open(cls, directory: Path, *, seal_key: bytes) -> SearchIndex:
        return cls(directory / "search.sqlite", seal_key=seal_key)

    def close(self) -> None:
        self._db.close()

    # --- keeping up with the catalog -------------------------------------------------------------

    def sync(self, catalog: Catalog) -> int:
        """Ingest manifests the index lacks; rebuild when the catalog is not the one indexed.
        Returns the number of rows ingested."""
        with self._lock:
            return self._sync(catalog)

    def _sync(self, catalog: Catalog) -> int:
        self._catalog = catalog
        have = dict(self._db.execute("SELECT seq, sha256 FROM manifests").fetchall())
        chain = {m.seq: m.sha256 for m in catalog.manifests}
        expected = sum(m.row_count for m in catalog.manifests if m.seq in have)
        if any(chain.get(seq) != sha for seq, sha in have.items()) or self.count() != expected:
            self._reset()
            have = {}
        added = 0
        bulk = not have and len(catalog.manifests) > 1
        if bulk:  # one sort per index after the load: 10x faster than growing B-trees row by row
            drop_indexes(self._db)
        for info in catalog.manifests:
            if info.seq in have:
                continue
            data = (catalog.directory / MANIFESTS_DIR / info.name).read_bytes()
            if sha256_hex(data) != info.sha256:
                raise CatalogError(
                    f"manifest {info.name} changed after the catalog verified it: open the "
                    "catalog again before searching"
                )
            added += self._ingest(info.seq, info.sha256, data)
        if bulk:
            create_indexes(self._db)
        return added

    def sync_verification(self, log_dir: Path) -> int:
        """Fold run files of the verification log the index has not seen yet."""
        return self._outcomes.sync(log_dir)

    def _ingest(self, seq: int, sha256: str, data: bytes) -> int:
        table = pq.read_table(pa.BufferReader(data), columns=list(COLUMNS))
        with self._db:
            for batch in table.to_batches(max_chunksize=50_000):
                # Timestamps are microseconds since the epoch in UTC already: cast, not convert.
                columns = [
                    (batch.column(c).cast(pa.int64()) if c in TIMES else batch.column(c))
                    for c in COLUMNS
                ]
                values = list(zip(*(c.to_pylist() for c in columns), strict=True))
                rows = ((seq, *v, row_mac(self._key, seq, v)) for v in values)
                self._db.executemany(INSERT, rows)
            self._db.execute("INSERT INTO manifests VALUES (?, ?)", (seq, sha256))
        return int(table.num_rows)

    def _reset(self) -> None:
        with self._db:
            for table in ("manifests", "records"):
                self._db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed names

    # --- queries ---------------------------------------------------------------------------------

    def by_encounter(self, encounter_id: str) -> list[dict[str, Any]]:
        return self._select("encounter_id = ?", (encounter_id,))

    def by_patient(self, pseudonym: str) -> list[dict[str, Any]]:
        return self._select("patient_pseudonym = ?", (pseudonym,))

    def by_facility(
        self, facility: str, *, start: datetime, end: datetime, limit: int
    ) -> list[dict[str, Any]]:
        """Discharged in [start, end)."""
        where = "facility = ? AND discharged_at >= ? AND discharged_at < ?"
        return self._select(where, (facility, micros(start), micros(end)), limit=limit)

    def by_class(
        self, retention_class: str, *, start: datetime, end: datetime, limit: int
    ) -> list[dict[str, Any]]:
        where = "retention_class = ? AND discharged_at >= ? AND discharged_at < ?"
        return self._select(where, (retention_class, micros(start), micros(end)), limit=limit)

    def last_verification(self, encounter_ids: Sequence[str]) -> dict[str, LastVerification]:
        return self._outcomes.last(encounter_ids)

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM records").fetchone()[0])

    def _select(
        self, where: str, args: Sequence[object], *, limit: int = 10_000
    ) -> list[dict[str, Any]]:
        sql = (
            f"SELECT seq, {','.join(COLUMNS)}, mac FROM records WHERE {where} "  # noqa: S608
            "ORDER BY discharged_at, encounter_id, seq LIMIT ?"
        )
        with self._lock:
            with cursor(self._db) as cur:
                rows = cur.execute(sql, (*args, limit)).fetchall()
            if not all(row_ok(self._key, r[0], r[1:-1], r[-1]) for r in rows):
                rows = self._rebuilt_answer(sql, (*args, limit))
        return [
            {c: as_time(v) if c in TIMES else v for c, v in zip(COLUMNS, row[1:-1], strict=True)}
            for row in rows
        ]

    def _rebuilt_answer(self, sql: str, args: Sequence[object]) -> list[Any]:
        """A row failed its seal (edited or planted outside the archive): rebuild the whole
        index from the manifests last synced, then answer from it."""
        if self._catalog is None:
            raise CatalogError(
                "the search index holds a row that fails its seal (altered outside the archive) "
                "and no catalog was synced to rebuild it from: delete the index directory"
            )
        self._reset()
        self._sync(self._catalog)
        with cursor(self._db) as cur:
            rows = cur.execute(sql, args).fetchall()
        if not all(row_ok(self._key, r[0], r[1:-1], r[-1]) for r in rows):
            raise CatalogError("the rebuilt search index fails its seal: is it another keyring's?")
        return list(rows)

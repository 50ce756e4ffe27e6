"""Reading a large catalog a batch at a time: projected columns, pruned row groups, never all.

:meth:`Catalog.rows` builds one table of every row, which at ten million rows is several GiB of
Arrow buffers (and ten times that as Python objects). What follows reads the same verified
manifest files, oldest first, but only the columns asked for and only the row groups whose Parquet
statistics can match ``where`` (``pyarrow.dataset`` predicate pushdown: a nightly manifest is one
row group whose min/max times span about a day, so a date filter skips whole files), and hands
them out as batches of at most ``batch_rows`` rows. Memory is bounded by one batch, whatever the
catalog's size.

The manifests stay the one source of truth: every value comes from their pages (CRC32-checked on
read, as in :meth:`Catalog.rows`), nothing from a cache, and ordering is the catalog's (manifest
by manifest, then row by row), so results equal those of the whole-table path.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from archive.catalog.codec import PARQUET_ERRORS
from archive.catalog.local import MANIFESTS_DIR
from archive.catalog.manifests import Catalog
from archive.catalog.naming import REBUILD_HINT
from archive.catalog.schema import SCHEMA, upgrade
from archive.core.errors import ManifestCorruptError

BATCH_ROWS: Final = 65_536
_FORMAT: Final = ds.ParquetFileFormat(
    default_fragment_scan_options=ds.ParquetFragmentScanOptions(page_checksum_verification=True)
)


def batches(
    catalog: Catalog,
    *,
    columns: Sequence[str] | None = None,
    where: Any = None,
    seqs: Sequence[int] | None = None,
    batch_rows: int = BATCH_ROWS,
) -> Iterator[Any]:
    """The catalog's rows as ``pyarrow.Table`` batches, oldest first: ``columns`` only (default
    all), rows matching the ``where`` expression only, from manifests ``seqs`` only (default
    all). Row groups whose statistics rule ``where`` out are never read."""
    wanted = set(seqs) if seqs is not None else None
    infos = [m for m in catalog.manifests if wanted is None or m.seq in wanted]
    for info in infos:
        path = str(catalog.directory / MANIFESTS_DIR / info.name)
        try:
            dataset = ds.dataset(path, schema=SCHEMA, format=_FORMAT)
            scanned = dataset.to_batches(
                columns=list(columns) if columns is not None else None,
                filter=where,
                batch_size=batch_rows,
                use_threads=False,  # keeps the rows in file order and one batch in memory
            )
            for batch in scanned:
                if batch.num_rows:
                    yield upgrade(pa.Table.from_batches([batch]))
        except PARQUET_ERRORS as e:
            raise ManifestCorruptError(
                f"manifest {info.name} in {catalog.directory} became unreadable after it was "
                f"verified ({type(e).__name__}): open the catalog again to find it, or "
                f"{REBUILD_HINT}"
            ) from e


def distinct(catalog: Catalog, column: str) -> set[Any]:
    """Every value of ``column`` once (e.g. the facilities: a handful of values over millions of
    rows), read one projected batch at a time."""
    found: set[Any] = set()
    for table in batches(catalog, columns=[column]):
        found.update(pc.unique(table.column(0)).to_pylist())
    return found


def count(catalog: Catalog, *, where: Any = None) -> int:
    """How many rows match ``where`` (every row: the chain's row counts, nothing read)."""
    if where is None:
        return sum(m.row_count for m in catalog.manifests)
    return sum(t.num_rows for t in batches(catalog, columns=["run_id"], where=where))

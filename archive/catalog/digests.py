"""The catalog's SHA-256 of records' sealed bytes, for the primary's re-homed reads.

A record restored by ``repair --site primary`` has a new version id; the store serves it under
the catalogued one only when the re-homed entry's SHA-256 is the catalog's
(:class:`archive.store.RehomedStore`). This is that lookup: asked only once a catalogued version
is missing at the primary, for the versions the re-homed map names.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path

import pyarrow.compute as pc

from archive.catalog import reader
from archive.catalog.manifests import Catalog
from archive.store import Catalogued
from archive.store.rehomed_store import no_catalog

_COLUMNS = ["object_key", "version_id", "sealed_sha256"]


def catalogued_digests(catalog_dir: Path) -> Catalogued:
    """A lookup over the catalog in ``catalog_dir`` (a machine without one refuses re-homed
    reads: it has nothing to check them against)."""

    def lookup(pairs: Collection[tuple[str, str]]) -> Mapping[tuple[str, str], str]:
        if not catalog_dir.is_dir():
            return no_catalog(pairs)
        wanted = set(pairs)
        # Only the rows with the wanted keys, three columns, a batch at a time: the whole
        # catalog as Python rows was gigabytes at millions of rows.
        where = pc.field("object_key").isin(sorted({key for key, _ in wanted}))
        found: dict[tuple[str, str], str] = {}
        for table in reader.batches(Catalog.open(catalog_dir), columns=_COLUMNS, where=where):
            for key, version, sha in zip(*(c.to_pylist() for c in table.columns), strict=True):
                if (key, version) in wanted:
                    found[(key, version)] = sha
        return found

    return lookup

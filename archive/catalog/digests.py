"""The catalog's SHA-256 of records' sealed bytes, for the primary's re-homed reads.

A record restored by ``repair --site primary`` has a new version id; the store serves it under
the catalogued one only when the re-homed entry's SHA-256 is the catalog's
(:class:`archive.store.RehomedStore`). This is that lookup: asked only once a catalogued version
is missing at the primary, for the versions the re-homed map names.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path

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
        table = Catalog.open(catalog_dir).rows().select(_COLUMNS).to_pylist()
        return {
            (r["object_key"], r["version_id"]): r["sealed_sha256"]
            for r in table
            if (r["object_key"], r["version_id"]) in wanted
        }

    return lookup

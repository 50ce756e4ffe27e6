"""Catalog: what the archive holds, one hash-chained Parquet manifest per run.

Takes the rows of a finished run (one per stored record: keys, versions, hashes, class,
retain-until, the patient only as a pseudonym); returns nothing but a new manifest that names the
SHA-256 of the one before it, written locally and locked in the bucket. The bucket's copies are the
source of truth: the local directory can be rebuilt from them and checked against them.
"""

from archive.catalog.manifests import (
    BUCKET_PREFIX,
    HEAD_FILE,
    MANIFESTS_DIR,
    Catalog,
    manifest_key,
    manifest_name,
)
from archive.catalog.schema import (
    GENESIS_SHA256,
    LEGACY_BUCKET_PREFIX,
    SCHEMA,
    CatalogRow,
    ManifestHeader,
    decode_header,
    decode_table,
    encode_manifest,
    manifest_lock,
    manifest_retain_until,
    rows_to_table,
    table_to_rows,
)

__all__ = [
    "BUCKET_PREFIX",
    "GENESIS_SHA256",
    "HEAD_FILE",
    "LEGACY_BUCKET_PREFIX",
    "MANIFESTS_DIR",
    "SCHEMA",
    "Catalog",
    "CatalogRow",
    "ManifestHeader",
    "decode_header",
    "decode_table",
    "encode_manifest",
    "manifest_key",
    "manifest_lock",
    "manifest_name",
    "manifest_retain_until",
    "rows_to_table",
    "table_to_rows",
]

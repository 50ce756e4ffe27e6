"""Catalog: what the archive holds, one hash-chained Parquet manifest per run.

Takes the rows of a finished run (one per stored record: keys, versions, hashes, class,
retain-until, the patient only as a pseudonym); returns nothing but a new manifest that names the
SHA-256 of the one before it, written locally and locked in the bucket. The bucket's copies are the
source of truth: the local directory can be rebuilt from them and checked against them.
"""

from archive.catalog.bucket import manifest_lock, manifest_retain_until
from archive.catalog.chain import ManifestInfo
from archive.catalog.codec import ManifestHeader, decode_header, decode_table, encode_manifest
from archive.catalog.local import HEAD_FILE, MANIFESTS_DIR
from archive.catalog.manifests import AppendResult, Catalog
from archive.catalog.naming import (
    BUCKET_PREFIX,
    GENESIS_SHA256,
    LEGACY_BUCKET_PREFIX,
    manifest_key,
    manifest_name,
)
from archive.catalog.schema import SCHEMA, CatalogRow, rows_to_table, table_to_rows

__all__ = [
    "BUCKET_PREFIX",
    "GENESIS_SHA256",
    "HEAD_FILE",
    "LEGACY_BUCKET_PREFIX",
    "MANIFESTS_DIR",
    "SCHEMA",
    "AppendResult",
    "Catalog",
    "CatalogRow",
    "ManifestHeader",
    "ManifestInfo",
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

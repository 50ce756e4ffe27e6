"""A manifest's bytes: one Parquet file holding a run's rows and, as metadata, its chain header.

The :class:`ManifestHeader` travels as Parquet key-value metadata: the catalog format, the
manifest's sequence number, the run id, the creation time, the row count and the sha256 of the
previous manifest file's bytes. :func:`encode_manifest` is deterministic: the same rows and header
give the same bytes with the same pyarrow version (writer options are pinned and the only time
written is ``header.created_at``), which is what lets a rebuilt catalog match the bucket byte for
byte. Decoding checks everything the file says about itself; whether it follows its predecessor
is :mod:`.chain`'s business.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, cast

import pyarrow as pa
import pyarrow.parquet as pq

from archive.catalog.naming import CATALOG_FORMAT_VERSION, hint_for
from archive.catalog.schema import HEX64, SCHEMA, is_known_schema, to_utc, upgrade
from archive.core.errors import CatalogError, ManifestCorruptError

_META_PREFIX = "emr_archive.catalog."
# Pinned so that identical input gives identical bytes, and so that Parquet's own CRC32 page
# checksums are written (a flipped bit in a data page fails the read even without the chain).
_WRITE_OPTIONS: Final[dict[str, Any]] = {
    "version": "2.6",
    "data_page_version": "1.0",
    "compression": "zstd",
    "compression_level": 3,
    "use_dictionary": True,
    "write_statistics": True,
    "write_page_checksum": True,
    "store_schema": True,
    "row_group_size": 1 << 20,
}
# Catch-all for pyarrow's parse failures: ArrowInvalid is a ValueError, ArrowIOError an OSError;
# a corrupted length field may also surface as a memory or index error.
PARQUET_ERRORS: Final = (pa.ArrowException, OSError, ValueError, MemoryError, IndexError)
_MAGIC = b"PAR1"


@dataclass(frozen=True, slots=True, kw_only=True)
class ManifestHeader:
    """What a manifest says about itself; stored as Parquet key-value metadata."""

    format_version: int
    seq: int
    run_id: str
    created_at: datetime
    row_count: int
    prev_sha256: str

    def __post_init__(self) -> None:
        if self.created_at.tzinfo is None or not HEX64.fullmatch(self.prev_sha256):
            raise CatalogError("manifest created_at must be timezone-aware, prev_sha256 hex")
        if self.seq < 1 or self.row_count < 0:
            raise CatalogError("manifest seq must be >= 1 and row_count >= 0")

    def to_metadata(self) -> dict[str, str]:
        values = {
            "format_version": str(self.format_version),
            "seq": str(self.seq),
            "run_id": self.run_id,
            "created_at": to_utc(self.created_at).isoformat(),
            "row_count": str(self.row_count),
            "prev_sha256": self.prev_sha256,
        }
        return {_META_PREFIX + k: v for k, v in values.items()}

    @classmethod
    def from_metadata(cls, metadata: dict[bytes, bytes], *, name: str) -> ManifestHeader:
        try:
            raw = {k.decode(): v.decode() for k, v in metadata.items()}
            get = {k: raw[_META_PREFIX + k] for k in cls.__dataclass_fields__}.__getitem__
            header = cls(
                format_version=int(get("format_version")),
                seq=int(get("seq")),
                run_id=get("run_id"),
                created_at=datetime.fromisoformat(get("created_at")),
                row_count=int(get("row_count")),
                prev_sha256=get("prev_sha256"),
            )
        except (KeyError, ValueError, CatalogError) as e:
            raise ManifestCorruptError(
                f"{name}: catalog metadata is missing or malformed ({type(e).__name__}); "
                f"{hint_for(name)}"
            ) from e
        return header


def encode_manifest(table: Any, header: ManifestHeader) -> bytes:
    """Deterministic Parquet bytes of ``table`` (which must have :data:`SCHEMA`) and ``header``."""
    if not table.schema.equals(SCHEMA) or table.num_rows != header.row_count:
        raise CatalogError("manifest table does not match the catalog schema or the row count")
    sink = pa.BufferOutputStream()
    pq.write_table(table.replace_schema_metadata(header.to_metadata()), sink, **_WRITE_OPTIONS)
    return cast(bytes, sink.getvalue().to_pybytes())


def decode_header(data: bytes, *, name: str) -> ManifestHeader:
    """Parse the footer of manifest ``data`` (named ``name`` in errors) and check its schema."""
    if not (data.startswith(_MAGIC) and data.endswith(_MAGIC)):  # pyarrow skips the leading one
        raise ManifestCorruptError(f"{name}: not a Parquet file (magic bytes); {hint_for(name)}")
    try:
        meta = pq.read_metadata(pa.BufferReader(data))
        schema = meta.schema.to_arrow_schema()
        num_rows = int(meta.num_rows)
        kv = dict(meta.metadata or {})
    except PARQUET_ERRORS as e:
        raise ManifestCorruptError(
            f"{name}: not a readable Parquet manifest ({type(e).__name__}); {hint_for(name)}"
        ) from e
    header = ManifestHeader.from_metadata(kv, name=name)
    if header.format_version != CATALOG_FORMAT_VERSION:
        raise ManifestCorruptError(
            f"{name}: records catalog format {header.format_version} but this version reads "
            f"format {CATALOG_FORMAT_VERSION}: if it is newer, upgrade emr-archive; otherwise the "
            f"file is damaged: {hint_for(name)}"
        )
    if not is_known_schema(schema) or num_rows != header.row_count:
        raise ManifestCorruptError(
            f"{name}: columns or row count differ from what the manifest records; {hint_for(name)}"
        )
    return header


def decode_table(data: bytes, *, name: str) -> Any:
    """Read every page of manifest ``data``, verifying Parquet's page checksums; a manifest
    written before a column was added comes back with it (:func:`~.schema.upgrade`)."""
    try:
        table = pq.read_table(pa.BufferReader(data), page_checksum_verification=True)
    except PARQUET_ERRORS as e:
        raise ManifestCorruptError(
            f"{name}: a data page is unreadable or fails its checksum ({type(e).__name__}); "
            f"{hint_for(name)}"
        ) from e
    return upgrade(table.replace_schema_metadata(None))

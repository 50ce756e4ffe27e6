"""What a catalog manifest is: the row schema, the manifest codec and the hash-chain rules.

Pure functions from rows, metadata and bytes to values; files and buckets are handled by
:mod:`archive.catalog`, whose docstring describes the layout and why the chain detects tampering.

A manifest is one Parquet file holding the rows of one archive run. Its columns are declared once,
in :data:`SCHEMA`; :class:`CatalogRow` mirrors them with typed fields. Its Parquet key-value
metadata carries a :class:`ManifestHeader`: the catalog format, the manifest's sequence number, the
run id, the creation time, the row count and the sha256 of the previous manifest file's bytes
(:data:`GENESIS_SHA256` for the first). :class:`HeadRecord` is the small file naming the sha256 of
the newest manifest, which has no successor to vouch for it.

:func:`encode_manifest` is deterministic: the same rows and header give the same bytes with the same
pyarrow version (writer options are pinned and the only time written is ``header.created_at``).

Patients appear only as ``patient_pseudonym``, an HMAC computed by the caller. Error messages name
files, row positions and fields, never values, so no PHI reaches a log.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, cast

import pyarrow as pa
import pyarrow.parquet as pq

from archive.core.errors import CatalogError, ChainBrokenError, ManifestCorruptError

if TYPE_CHECKING:
    from archive.core.settings import Settings

CATALOG_FORMAT_VERSION: Final = 1
GENESIS_SHA256: Final = "0" * 64
# Bucket copies are sealed (archive.sealed_store): they name encounters, pseudonyms and classes.
# Releases before sealing wrote plaintext copies under LEGACY_BUCKET_PREFIX; those stay locked
# (COMPLIANCE) and are ignored: every manifest is uploaded again, sealed, under BUCKET_PREFIX.
BUCKET_PREFIX: Final = "catalog/sealed/v1/manifests/"
LEGACY_BUCKET_PREFIX: Final = "catalog/manifests/"
REBUILD_HINT: Final = (
    "restore the catalog from the locked bucket copies with Catalog.rebuild(new_dir, store)"
)
BUCKET_HINT: Final = (
    "the locked bucket copies are the authority and are damaged or incomplete: keep the local "
    "catalog, stop appending and investigate the storage (replicas, audit log)"
)


def hint_for(name: str) -> str:
    """What to do about a bad manifest, local (``manifests/...``) or in the bucket."""
    return BUCKET_HINT if name.startswith(BUCKET_PREFIX) else REBUILD_HINT


_UTC_TS = pa.timestamp("us", tz="UTC")


def _f(name: str, type_: Any) -> Any:
    return pa.field(name, type_, nullable=False)


SCHEMA: Final = pa.schema(
    [
        _f("encounter_id", pa.string()),
        _f("patient_pseudonym", pa.string()),
        _f("facility", pa.string()),
        _f("admitted_at", _UTC_TS),
        _f("discharged_at", _UTC_TS),
        _f("retention_class", pa.string()),
        _f("retain_until", _UTC_TS),
        _f("bucket", pa.string()),
        _f("object_key", pa.string()),
        _f("version_id", pa.string()),
        _f("pdf_sha256", pa.string()),
        _f("data_sha256", pa.string()),
        _f("sealed_sha256", pa.string()),
        _f("sealed_size", pa.int64()),
        _f("signer_cert_sha256", pa.string()),
        _f("signed_at", _UTC_TS),
        _f("kek_id", pa.string()),
        _f("kek_version", pa.int32()),
        _f("format_version", pa.int32()),
        _f("run_id", pa.string()),
    ]
)

_HEX64 = re.compile(r"[0-9a-f]{64}")
_RUN_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_INT32_MAX = 2**31 - 1
_INT64_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogRow:
    """One archived object, as the catalog records it. Mirrors :data:`SCHEMA` field for field."""

    encounter_id: str
    patient_pseudonym: str  # HMAC pseudonym; the catalog never sees a plain patient id or name
    facility: str
    admitted_at: datetime
    discharged_at: datetime
    retention_class: str
    retain_until: datetime
    bucket: str
    object_key: str
    version_id: str
    pdf_sha256: str
    data_sha256: str  # sha256 of the structured data embedded in the PDF
    sealed_sha256: str
    sealed_size: int
    signer_cert_sha256: str
    signed_at: datetime
    kek_id: str
    kek_version: int
    format_version: int  # of the sealed envelope
    run_id: str

    def __post_init__(self) -> None:
        for f in fields(self):
            _check_field(f.name, getattr(self, f.name))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CatalogRow:
        """Build a row from a mapping of column name to value (e.g. one ``to_pylist`` item)."""
        utc: dict[str, Any] = {
            k: _to_utc(v) if isinstance(v, datetime) else v for k, v in values.items()
        }
        return cls(**utc)


def _check_field(name: str, value: object) -> None:
    arrow_type = SCHEMA.field(name).type
    if arrow_type == _UTC_TS:
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise CatalogError(f"catalog row field {name} must be a timezone-aware datetime")
    elif pa.types.is_integer(arrow_type):
        limit = _INT32_MAX if arrow_type == pa.int32() else _INT64_MAX
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
            raise CatalogError(f"catalog row field {name} must be an integer in 0..{limit}")
    elif not isinstance(value, str) or not value:
        raise CatalogError(f"catalog row field {name} must be a non-empty string")
    elif name.endswith("sha256") and not _HEX64.fullmatch(value):
        raise CatalogError(f"catalog row field {name} must be 64 lowercase hex digits")


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def rows_to_table(rows: Iterable[CatalogRow]) -> Any:
    """Rows as a ``pyarrow.Table`` with exactly :data:`SCHEMA`."""
    rows = list(rows)
    arrays = [pa.array([getattr(r, f.name) for r in rows], type=f.type) for f in SCHEMA]
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def table_to_rows(table: Any) -> list[CatalogRow]:
    """The inverse of :func:`rows_to_table`; timestamps come back as UTC datetimes."""
    return [CatalogRow.from_dict(d) for d in table.select(SCHEMA.names).to_pylist()]


def validate_run_id(run_id: str) -> str:
    if not _RUN_ID.fullmatch(run_id):
        raise CatalogError("run_id must be 1-128 characters of A-Z a-z 0-9 . _ : -")
    return run_id


# --- manifest header (Parquet key-value metadata) ------------------------------------------------

_META_PREFIX = "emr_archive.catalog."


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
        if self.created_at.tzinfo is None or not _HEX64.fullmatch(self.prev_sha256):
            raise CatalogError("manifest created_at must be timezone-aware, prev_sha256 hex")
        if self.seq < 1 or self.row_count < 0:
            raise CatalogError("manifest seq must be >= 1 and row_count >= 0")

    def to_metadata(self) -> dict[str, str]:
        values = {
            "format_version": str(self.format_version),
            "seq": str(self.seq),
            "run_id": self.run_id,
            "created_at": _to_utc(self.created_at).isoformat(),
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


# --- codec ---------------------------------------------------------------------------------------

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
    if not schema.equals(SCHEMA) or num_rows != header.row_count:
        raise ManifestCorruptError(
            f"{name}: columns or row count differ from what the manifest records; {hint_for(name)}"
        )
    return header


def decode_table(data: bytes, *, name: str) -> Any:
    """Read every page of manifest ``data``, verifying Parquet's page checksums."""
    try:
        table = pq.read_table(pa.BufferReader(data), page_checksum_verification=True)
    except PARQUET_ERRORS as e:
        raise ManifestCorruptError(
            f"{name}: a data page is unreadable or fails its checksum ({type(e).__name__}); "
            f"{hint_for(name)}"
        ) from e
    return table.replace_schema_metadata(None)


# --- the chain -----------------------------------------------------------------------------------

_MANIFEST_NAME = re.compile(r"(\d{10})\.parquet")


def manifest_name(seq: int) -> str:
    return f"{seq:010d}.parquet"


def manifest_key(seq: int) -> str:
    """The bucket key of manifest ``seq``: a sequence number, never PHI."""
    return BUCKET_PREFIX + manifest_name(seq)


def parse_manifest_name(name: str) -> int | None:
    match = _MANIFEST_NAME.fullmatch(name)
    return int(match[1]) if match else None


@dataclass(frozen=True, slots=True, kw_only=True)
class ManifestInfo:
    """One verified manifest: its header plus the sha256 and size of its file bytes."""

    seq: int
    sha256: str
    size: int
    run_id: str
    created_at: datetime
    row_count: int
    prev_sha256: str

    @property
    def name(self) -> str:
        return manifest_name(self.seq)

    @property
    def key(self) -> str:
        return manifest_key(self.seq)


def link_manifest(prev: ManifestInfo | None, seq: int, data: bytes, *, label: str) -> ManifestInfo:
    """Verify that ``data`` is manifest ``seq`` and follows ``prev``; ``label`` names it."""
    header = decode_header(data, name=label)
    if header.seq != seq:
        raise ChainBrokenError(
            f"{label} records sequence number {header.seq}, not {seq}: manifests were renamed, "
            f"reordered or copied; {hint_for(label)}"
        )
    expected = prev.sha256 if prev is not None else GENESIS_SHA256
    if header.prev_sha256 != expected:
        before = prev.name if prev is not None else "genesis (64 zeros)"
        raise ChainBrokenError(
            f"{label} records the previous manifest's sha256 as {header.prev_sha256[:16]}..., but "
            f"the previous manifest {before} hashes to {expected[:16]}...: one of the two was "
            f"altered or replaced; do not append; {hint_for(label)}"
        )
    return ManifestInfo(
        seq=seq,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        run_id=header.run_id,
        created_at=header.created_at,
        row_count=header.row_count,
        prev_sha256=header.prev_sha256,
    )


def check_sequence(seqs: Iterable[int], *, where: str) -> list[int]:
    """``seqs`` sorted, which must run 1..N without a gap (``where`` prefixes names in errors)."""
    ordered = sorted(seqs)
    for expected, seq in enumerate(ordered, start=1):
        if seq != expected:
            raise ChainBrokenError(
                f"{where}{manifest_name(expected)} is missing (the next present is "
                f"{manifest_name(seq)}): a manifest was deleted or renamed; {hint_for(where)}"
            )
    return ordered


@dataclass(frozen=True, slots=True, kw_only=True)
class HeadRecord:
    """The newest manifest's sequence number and sha256: the one hash no later manifest holds."""

    seq: int
    sha256: str

    def encode(self) -> bytes:
        record = {
            "catalog_format": CATALOG_FORMAT_VERSION,
            "manifest": manifest_name(self.seq),
            "seq": self.seq,
            "sha256": self.sha256,
        }
        return json.dumps(record, sort_keys=True).encode() + b"\n"

    @classmethod
    def decode(cls, data: bytes, *, label: str) -> HeadRecord:
        try:
            raw = json.loads(data)
            head = cls(seq=raw["seq"], sha256=raw["sha256"])
            ok = raw["catalog_format"] == CATALOG_FORMAT_VERSION and type(head.seq) is int
            ok = ok and head.seq >= 1 and raw["manifest"] == manifest_name(head.seq)
        except (ValueError, KeyError, TypeError) as e:
            raise ChainBrokenError(
                f"{label} is unreadable ({type(e).__name__}); {REBUILD_HINT}"
            ) from e
        if not ok or not isinstance(head.sha256, str) or not _HEX64.fullmatch(head.sha256):
            raise ChainBrokenError(f"{label} is malformed; {REBUILD_HINT}")
        return head


def check_head(head: HeadRecord | None, manifests: Sequence[ManifestInfo], *, where: str) -> bool:
    """Check HEAD against the verified ``manifests``. True when the newest manifest is *pending*:
    written, but a crash came before HEAD was updated (HEAD names the one before it)."""
    head_seq, n = (head.seq if head else 0), len(manifests)
    if head_seq > n:
        raise ChainBrokenError(
            f"HEAD names manifest {manifest_name(head_seq)} but the newest present is "
            f"{manifest_name(n) if n else 'none'}: newer manifests were deleted; {REBUILD_HINT}"
        )
    if head_seq < n - 1:
        raise ChainBrokenError(
            f"HEAD names manifest {manifest_name(head_seq) if head_seq else 'none'} but "
            f"manifests up to {manifest_name(n)} are present: HEAD was deleted or replaced by "
            f"an old copy, or manifests were added by hand; {REBUILD_HINT} and compare"
        )
    if head is not None and manifests[head_seq - 1].sha256 != head.sha256:
        raise ManifestCorruptError(
            f"{where}{manifest_name(head_seq)} does not match the sha256 recorded in HEAD: the "
            f"manifest (or HEAD) was altered; {REBUILD_HINT} and compare"
        )
    return head_seq == n - 1


def manifest_lock(settings: Settings, now: datetime) -> datetime:
    """How long the bucket copies of catalog manifests, audit and register segments written at
    ``now`` stay locked, by the settings."""
    return manifest_retain_until(now, years=settings.catalog.manifest_retain_years)


def manifest_retain_until(now: datetime, *, years: int) -> datetime:
    """``now`` plus ``years`` calendar years (29 February rounds up to 1 March): how long the
    bucket copies of manifests stay locked (``CatalogSettings.manifest_retain_years``)."""
    try:
        return now.replace(year=now.year + years)
    except ValueError:
        return now.replace(year=now.year + years, month=3, day=1)

"""The catalog's row: one archived object, as a typed value and as a Parquet column set.

The columns are declared once, in :data:`SCHEMA`; :class:`CatalogRow` mirrors them field for field
and refuses a value the column could not hold faithfully (naive times, out-of-range integers,
malformed hashes), so that what is written is exactly what is read back. Patients appear only as
``patient_pseudonym``, an HMAC computed by the caller. Error messages name fields, never values,
so no PHI reaches a log.

Columns are only ever added at the end. A manifest is immutable (the hash chain vouches for its
bytes), so manifests written before a column existed keep their shorter column set for ever:
:data:`LEGACY_SCHEMAS` lists the column sets still read, and :func:`upgrade` gives such a table
the current columns, filled with what the older rows meant (:data:`_ADDED`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from archive.core.errors import CatalogError

HEX64: Final = re.compile(r"[0-9a-f]{64}")
_UTC_TS = pa.timestamp("us", tz="UTC")
_RUN_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_INT32_MAX = 2**31 - 1
_INT64_MAX = 2**63 - 1


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
        # Added with the QĐ 130 source: what the archived data is ("fhir" Bundle JSON, "qd130"
        # the hospital's HOSO XML) and the source's own episode key (QĐ 130 MA_LK; null for FHIR).
        _f("source_kind", pa.string()),
        pa.field("episode_key", pa.string(), nullable=True),
        # The facility's own signature over the source file (QĐ 130 CHUKYDONVI): "valid",
        # "absent" or "unverified", and its certificate's SHA-256; null for FHIR rows.
        pa.field("facility_signature", pa.string(), nullable=True),
        pa.field("facility_signer_sha256", pa.string(), nullable=True),
    ]
)

# Every column added since the first catalog, with the value its rows had implicitly.
_ADDED: Final[dict[str, object]] = {
    "source_kind": "fhir",
    "episode_key": None,
    "facility_signature": None,
    "facility_signer_sha256": None,
}
SCHEMA_V1: Final = pa.schema([f for f in SCHEMA if f.name not in _ADDED])
LEGACY_SCHEMAS: Final = (SCHEMA_V1,)


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
    source_kind: str = "fhir"  # what data_sha256 hashes: "fhir" JSON or "qd130" HOSO XML
    episode_key: str | None = None  # QĐ 130 MA_LK
    facility_signature: str | None = None  # valid / absent / unverified (QĐ 130 CHUKYDONVI)
    facility_signer_sha256: str | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            _check_field(f.name, getattr(self, f.name))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CatalogRow:
        """Build a row from a mapping of column name to value (e.g. one ``to_pylist`` item)."""
        utc: dict[str, Any] = {
            k: to_utc(v) if isinstance(v, datetime) else v for k, v in values.items()
        }
        return cls(**utc)


def _check_field(name: str, value: object) -> None:
    column = SCHEMA.field(name)
    arrow_type = column.type
    if value is None and column.nullable:
        return
    if arrow_type == _UTC_TS:
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise CatalogError(f"catalog row field {name} must be a timezone-aware datetime")
    elif pa.types.is_integer(arrow_type):
        limit = _INT32_MAX if arrow_type == pa.int32() else _INT64_MAX
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
            raise CatalogError(f"catalog row field {name} must be an integer in 0..{limit}")
    elif not isinstance(value, str) or not value:
        raise CatalogError(f"catalog row field {name} must be a non-empty string")
    elif name.endswith("sha256") and not HEX64.fullmatch(value):
        raise CatalogError(f"catalog row field {name} must be 64 lowercase hex digits")


def to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def rows_to_table(rows: Iterable[CatalogRow]) -> Any:
    """Rows as a ``pyarrow.Table`` with exactly :data:`SCHEMA`."""
    rows = list(rows)
    arrays = [pa.array([getattr(r, f.name) for r in rows], type=f.type) for f in SCHEMA]
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def table_to_rows(table: Any) -> list[CatalogRow]:
    """The inverse of :func:`rows_to_table`; timestamps come back as UTC datetimes."""
    return [CatalogRow.from_dict(d) for d in upgrade(table).select(SCHEMA.names).to_pylist()]


def is_known_schema(schema: Any) -> bool:
    """True for :data:`SCHEMA` and the column sets of older manifests."""
    return bool(schema.equals(SCHEMA)) or any(schema.equals(s) for s in LEGACY_SCHEMAS)


def upgrade(table: Any) -> Any:
    """``table`` (any of :func:`is_known_schema`'s column sets, or a projection of them) with
    every added column it lacks, and its nulls from older manifests, as the older rows meant.

    A dataset scan over manifests of different ages yields nulls where a file lacks a column;
    they are replaced here, so a reader never sees a null where :data:`SCHEMA` forbids one."""
    for name, value in _ADDED.items():
        column = SCHEMA.field(name)
        if name not in table.column_names:
            if set(SCHEMA_V1.names) <= set(table.column_names):  # a whole older manifest
                values = pa.array([value] * table.num_rows, column.type)
                table = table.append_column(column, values)
        elif value is not None and table.column(name).null_count:
            filled = pc.fill_null(table.column(name), pa.scalar(value, column.type))
            table = table.set_column(table.column_names.index(name), column, filled)
    return table


def validate_run_id(run_id: str) -> str:
    if not _RUN_ID.fullmatch(run_id):
        raise CatalogError("run_id must be 1-128 characters of A-Z a-z 0-9 . _ : -")
    return run_id

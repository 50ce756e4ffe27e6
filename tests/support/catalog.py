"""Catalog rows and runs for tests: deterministic rows that use every column type, appended as
numbered runs at a pinned clock. Shared by the catalog tests, the sealed-store tests and the
child process of the catalog's kill-at-rename tests, which imports this module by name."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

from archive.catalog import Catalog, CatalogRow
from tests.support.memstore import MemoryStore

NOW = datetime(2025, 3, 1, 19, 30, tzinfo=UTC)
RETAIN = datetime(2125, 3, 1, tzinfo=UTC)
ICT = timezone(timedelta(hours=7))  # Vietnam; timestamps must come back as the same instants


def _hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def make_row(i: int, run_id: str) -> CatalogRow:
    admitted = datetime(2025, 2, 1, 8, 15, 30, 123456, tzinfo=ICT) + timedelta(hours=i)
    return CatalogRow(
        encounter_id=f"enc-{i:06d}",
        patient_pseudonym=_hex(f"patient-{i % 7}"),
        facility="BV-01",
        admitted_at=admitted,
        discharged_at=admitted + timedelta(days=3),
        retention_class="standard-10y",
        retain_until=datetime(2035, 2, 4, tzinfo=UTC),
        bucket="emr-archive",
        object_key=f"records/{_hex(str(i))[:32]}",
        version_id=f"v{i}",
        pdf_sha256=_hex(f"pdf-{i}"),
        data_sha256=_hex(f"data-{i}"),
        sealed_sha256=_hex(f"sealed-{i}"),
        sealed_size=5_000_000_000 + i,  # beyond int32: sizes are int64
        signer_cert_sha256=_hex("signer"),
        signed_at=admitted + timedelta(days=3, hours=1),
        kek_id="emr-archive-kek",
        kek_version=3,
        format_version=1,
        run_id=run_id,
    )


def make_rows(start: int, count: int, run_id: str) -> list[CatalogRow]:
    return [make_row(i, run_id) for i in range(start, start + count)]


def append_run(catalog: Catalog, store: MemoryStore, n: int, *, rows: int = 3) -> None:
    """Append run ``n``: rows ``100 n`` onwards, run id ``run-n``, ``n`` days after NOW."""
    run_id = f"run-{n}"
    catalog.append(
        make_rows(100 * n, rows, run_id),
        run_id=run_id,
        now=NOW + timedelta(days=n),
        store=store,
        retain_until=RETAIN,
    )

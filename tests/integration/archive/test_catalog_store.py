"""The catalog against the real store: locked manifest copies and a rebuild from the bucket."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archive.catalog import BUCKET_PREFIX, Catalog, CatalogRow
from archive.seal import MAGIC
from archive.store import S3ObjectStore, SealedStore
from infra.settings import AppSettings as Settings

pytestmark = pytest.mark.integration


def _row(i: int, *, bucket: str, run_id: str) -> CatalogRow:
    now = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    digest = hashlib.sha256(f"{run_id}-{i}".encode()).hexdigest()
    return CatalogRow(
        encounter_id=f"ENC-{run_id}-{i}",
        patient_pseudonym="p1_" + digest,
        facility="01001",
        admitted_at=now - timedelta(days=3),
        discharged_at=now,
        retention_class="ordinary",
        retain_until=datetime(2036, 12, 31, 17, 0, tzinfo=UTC),
        bucket=bucket,
        object_key=f"records/v1/01001/{digest[:2]}/r1{digest[:38]}",
        version_id=f"v-{i}",
        pdf_sha256=digest,
        data_sha256=digest,
        sealed_sha256=digest,
        sealed_size=60_000 + i,
        signer_cert_sha256=digest,
        signed_at=now,
        kek_id="emr-archive-kek",
        kek_version=1,
        format_version=1,
        run_id=run_id,
    )


def test_manifests_are_locked_in_the_bucket_and_the_catalog_rebuilds_identically(
    tmp_path: Path, stack_settings: Settings, retain_until: datetime
) -> None:
    # A bucket of its own: other tests' manifests must not mix into this chain.
    bucket = f"catalog-{secrets.token_hex(4)}"
    settings = stack_settings.model_copy(
        update={"s3": stack_settings.s3.model_copy(update={"bucket": bucket})}
    )
    plain = S3ObjectStore.from_settings(settings)
    plain.create_locked_bucket()
    store = SealedStore.for_settings(settings, plain)
    catalog = Catalog.open(tmp_path / "catalog", create=True)
    for run in range(3):
        run_id = f"run-{run}"
        rows = [_row(i, bucket=bucket, run_id=run_id) for i in range(50)]
        catalog.append(
            rows, run_id=run_id, now=datetime.now(UTC), store=store, retain_until=retain_until
        )

    copies = [v for v in store.list_versions(BUCKET_PREFIX) if not v.is_delete_marker]
    assert len(copies) == 3
    for copy in copies:
        lock = store.head(copy.key, version_id=copy.version_id).lock
        assert (lock.mode, lock.retain_until) == ("COMPLIANCE", retain_until)
        raw = plain.get(copy.key, version_id=copy.version_id)  # the bucket holds envelopes only
        assert raw.startswith(MAGIC)
        assert b"PAR1" not in raw
        assert b"ENC-run-" not in raw
    assert catalog.sync(store, retain_until=retain_until) == ()  # same plaintext: nothing new

    rebuilt = Catalog.rebuild(tmp_path / "rebuilt", store)
    assert rebuilt.rows().equals(catalog.rows())
    for info in catalog.manifests:
        local = (catalog.directory / "manifests" / info.name).read_bytes()
        assert (rebuilt.directory / "manifests" / info.name).read_bytes() == local
    assert rebuilt.latest_manifest_sha256 == catalog.latest_manifest_sha256

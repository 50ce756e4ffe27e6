"""Helpers for the retention integration tests (no tests here): records written for real.

Records are deposited (sealed, create-once, COMPLIANCE-locked) on the session's SeaweedFS with the
retain-until each test needs - a few seconds for disposition - and catalogued like a nightly run
would. A :class:`RecordingStore` wraps the real store and records every mutating call, so tests
can prove what the retention code never *tried* to do.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from archive import wiring
from archive.catalog import Catalog, CatalogRow
from archive.seal import ObjectIdentity
from archive.store import (
    ObjectHead,
    ObjectVersion,
    PutResult,
    S3ObjectStore,
    SealedStore,
    deposit,
    record_key,
)
from infra.settings import AppSettings as Settings


@dataclass(frozen=True)
class Rec:
    encounter_id: str
    patient_id: str
    retention_class: str
    discharged_at: datetime
    retain_until: datetime
    facility: str = "01001"


def archive_records(settings: Settings, recs: list[Rec]) -> list[CatalogRow]:
    """Deposit and catalog ``recs`` as one run; returns the catalog rows."""
    store, keys, now = wiring.open_store(settings), wiring.open_keyring(settings), datetime.now(UTC)
    run_id = f"test-{secrets.token_hex(4)}"
    rows = []
    for r in recs:
        key = record_key(facility=r.facility, token=keys.record_token(r.encounter_id))
        doc = f"signed PDF of {r.encounter_id}".encode()
        identity = ObjectIdentity(store.bucket, key, r.encounter_id)
        d = deposit(
            doc,
            identity=identity,
            retain_until=r.retain_until,
            store=store,
            keys=keys,
            settings=settings.seal,
        )
        digest = hashlib.sha256(doc).hexdigest()
        rows.append(
            CatalogRow(
                encounter_id=r.encounter_id,
                patient_pseudonym=keys.pseudonym(r.patient_id),
                facility=r.facility,
                admitted_at=r.discharged_at - timedelta(days=3),
                discharged_at=r.discharged_at,
                retention_class=r.retention_class,
                retain_until=r.retain_until,
                bucket=store.bucket,
                object_key=key,
                version_id=d.version_id,
                pdf_sha256=digest,
                data_sha256=digest,
                sealed_sha256=d.sealed_sha256,
                sealed_size=d.sealed_size,
                signer_cert_sha256="0" * 64,
                signed_at=now,
                kek_id=d.kek.kek_id,
                kek_version=d.kek.version,
                format_version=d.format_version,
                run_id=run_id,
            )
        )
    catalog = Catalog.open(settings.catalog_dir, create=True)
    sealed = SealedStore.for_settings(settings, store, keys=keys)  # as the nightly run does
    catalog.append(rows, run_id=run_id, now=now, store=sealed, retain_until=now + timedelta(days=2))
    return rows


def add_version(store: S3ObjectStore, key: str, retain_until: datetime) -> str:
    """A second locked version under ``key`` (as a B-LTA renewal writes), bypassing create-once."""
    response = store.client.put_object(
        Bucket=store.bucket,
        Key=key,
        Body=b"renewed",
        ObjectLockMode="COMPLIANCE",
        ObjectLockRetainUntilDate=retain_until,
    )
    return str(response["VersionId"])


def wait_until(moment: datetime) -> None:
    """Sleep past ``moment`` (SeaweedFS enforces real time), plus a margin for clock rounding."""
    delay = (moment - datetime.now(UTC)).total_seconds() + 1.5
    if delay > 0:
        time.sleep(delay)


@dataclass
class RecordingStore:
    """The real store, with every mutating call recorded (and nothing else changed)."""

    inner: S3ObjectStore
    calls: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def bucket(self) -> str:
        return self.inner.bucket

    def ensure_compliant(self) -> None:
        self.inner.ensure_compliant()

    def put_locked(self, key: str, data: bytes, *, retain_until: datetime) -> PutResult:
        self.calls.append(("put_locked", key, ""))
        return self.inner.put_locked(key, data, retain_until=retain_until)

    def get(self, key: str, *, version_id: str) -> bytes:
        return self.inner.get(key, version_id=version_id)

    def head(self, key: str, *, version_id: str) -> ObjectHead:
        return self.inner.head(key, version_id=version_id)

    def latest(self, key: str) -> ObjectHead | None:
        return self.inner.latest(key)

    def list_versions(self, prefix: str = "", *, start_after: str = "") -> Iterator[ObjectVersion]:
        return self.inner.list_versions(prefix, start_after=start_after)

    def extend_retention(self, key: str, *, version_id: str, retain_until: datetime) -> None:
        self.calls.append(("extend_retention", key, version_id))
        self.inner.extend_retention(key, version_id=version_id, retain_until=retain_until)

    def set_legal_hold(self, key: str, *, version_id: str, on: bool) -> None:
        self.calls.append(("set_legal_hold:" + ("on" if on else "off"), key, version_id))
        self.inner.set_legal_hold(key, version_id=version_id, on=on)

    def delete_version(self, key: str, *, version_id: str) -> None:
        self.calls.append(("delete_version", key, version_id))
        self.inner.delete_version(key, version_id=version_id)

    def deleted_keys(self) -> set[str]:
        return {key for name, key, _ in self.calls if name == "delete_version"}


def lock_of(store: Any, key: str) -> list[tuple[datetime | None, bool]]:
    """(retain-until, legal hold) of every version of ``key``."""
    out = []
    for v in store.list_versions(key):
        if v.key == key and not v.is_delete_marker:
            lock = store.head(key, version_id=v.version_id).lock
            out.append((lock.retain_until, lock.legal_hold))
    return out

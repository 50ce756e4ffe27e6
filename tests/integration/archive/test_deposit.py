"""Deposit and withdraw against the real store: create once, adopt on retry, never overwrite."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import pytest

from archive.core.errors import EnvelopeIntegrityError, ObjectConflictError
from archive.seal import LocalKeyring, ObjectIdentity
from archive.store import S3ObjectStore, deposit, record_key, withdraw
from infra.settings import AppSettings as Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def keys(stack_settings: Settings) -> LocalKeyring:
    return LocalKeyring.open(stack_settings.keyring_dir)


def _identity(store: S3ObjectStore, keys: LocalKeyring) -> ObjectIdentity:
    record_id = f"ENC-{secrets.token_hex(6)}"
    key = record_key(facility="01001", token=keys.record_token(record_id))
    return ObjectIdentity(store.bucket, key, record_id)


def test_round_trip_under_lock(
    stack_settings: Settings, store: S3ObjectStore, keys: LocalKeyring, retain_until: datetime
) -> None:
    identity = _identity(store, keys)
    document = secrets.token_bytes(60_000)
    receipt = deposit(
        document,
        identity=identity,
        retain_until=retain_until,
        store=store,
        keys=keys,
        settings=stack_settings.seal,
    )
    assert receipt.created
    assert receipt.kek == keys.current()
    head = store.head(identity.key, version_id=receipt.version_id)
    assert (head.sha256, head.size) == (receipt.sealed_sha256, receipt.sealed_size)
    assert head.lock.mode == "COMPLIANCE"
    back = withdraw(
        identity=identity,
        version_id=receipt.version_id,
        store=store,
        keys=keys,
        settings=stack_settings.seal,
    )
    assert back == document


def test_retry_adopts_the_first_deposit(
    stack_settings: Settings, store: S3ObjectStore, keys: LocalKeyring, retain_until: datetime
) -> None:
    identity = _identity(store, keys)
    document = b"%PDF-1.7 the same document"
    first = deposit(
        document,
        identity=identity,
        retain_until=retain_until,
        store=store,
        keys=keys,
        settings=stack_settings.seal,
    )
    again = deposit(
        document,
        identity=identity,
        retain_until=retain_until,
        store=store,
        keys=keys,
        settings=stack_settings.seal,
    )
    assert not again.created
    assert (again.version_id, again.sealed_sha256) == (first.version_id, first.sealed_sha256)
    assert len(list(store.list_versions(identity.key))) == 1


def test_a_different_document_under_the_key_is_a_conflict(
    stack_settings: Settings, store: S3ObjectStore, keys: LocalKeyring, retain_until: datetime
) -> None:
    identity = _identity(store, keys)
    deposit(
        b"first",
        identity=identity,
        retain_until=retain_until,
        store=store,
        keys=keys,
        settings=stack_settings.seal,
    )
    with pytest.raises(ObjectConflictError, match="different document"):
        deposit(
            b"second",
            identity=identity,
            retain_until=retain_until,
            store=store,
            keys=keys,
            settings=stack_settings.seal,
        )
    assert len(list(store.list_versions(identity.key))) == 1


def test_adoption_extends_a_shorter_lock(
    stack_settings: Settings, store: S3ObjectStore, keys: LocalKeyring, retain_until: datetime
) -> None:
    identity = _identity(store, keys)
    first = deposit(
        b"doc",
        identity=identity,
        retain_until=retain_until,
        store=store,
        keys=keys,
        settings=stack_settings.seal,
    )
    longer = retain_until + timedelta(days=3)
    again = deposit(
        b"doc",
        identity=identity,
        retain_until=longer,
        store=store,
        keys=keys,
        settings=stack_settings.seal,
    )
    assert again.retain_until == longer
    assert store.head(identity.key, version_id=first.version_id).lock.retain_until == longer


def test_a_sealed_object_read_under_another_identity_does_not_open(
    stack_settings: Settings, store: S3ObjectStore, keys: LocalKeyring, retain_until: datetime
) -> None:
    identity = _identity(store, keys)
    receipt = deposit(
        b"doc",
        identity=identity,
        retain_until=retain_until,
        store=store,
        keys=keys,
        settings=stack_settings.seal,
    )
    moved = ObjectIdentity(identity.bucket, identity.key, "ENC-someone-else")
    with pytest.raises(EnvelopeIntegrityError):
        withdraw(
            identity=moved,
            version_id=receipt.version_id,
            store=store,
            keys=keys,
            settings=stack_settings.seal,
        )

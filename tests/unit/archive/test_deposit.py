"""Deposit semantics on the in-memory twin: create once, adopt, never overwrite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archive.core.errors import ObjectConflictError
from archive.core.settings import SealSettings
from archive.seal import LocalKeyring, ObjectIdentity
from archive.store import Deposit, ObjectLock, deposit
from tests.support.memstore import MemoryStore

UNTIL = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)


@pytest.fixture
def keys(tmp_path: Path) -> LocalKeyring:
    return LocalKeyring.create(tmp_path / "keys", kek_id="k")


def _deposit(
    store: MemoryStore, keys: LocalKeyring, data: bytes, until: datetime = UNTIL
) -> Deposit:
    identity = ObjectIdentity(store.bucket, "records/v1/x", "ENC-1")
    return deposit(
        data, identity=identity, retain_until=until, store=store, keys=keys, settings=SealSettings()
    )


def test_a_retry_whose_first_put_landed_returns_the_document(keys: LocalKeyring) -> None:
    store = MemoryStore()
    first = _deposit(store, keys, b"doc")
    again = _deposit(store, keys, b"doc")
    assert first.created
    assert not again.created
    assert again.adopted_document == b"doc"
    assert again.version_id == first.version_id


def test_a_different_document_is_a_conflict(keys: LocalKeyring) -> None:
    store = MemoryStore()
    _deposit(store, keys, b"doc")
    with pytest.raises(ObjectConflictError):
        _deposit(store, keys, b"other")


def test_adoption_puts_an_unlocked_version_under_compliance(keys: LocalKeyring) -> None:
    store = MemoryStore()
    first = _deposit(store, keys, b"doc")
    version = store._objects["records/v1/x"][0]
    version.lock = ObjectLock("GOVERNANCE", UNTIL + timedelta(days=5), legal_hold=False)
    again = _deposit(store, keys, b"doc")
    lock = store.head("records/v1/x", version_id=first.version_id).lock
    assert lock.mode == "COMPLIANCE"
    assert lock.retain_until == UNTIL + timedelta(days=5)  # never shortened
    assert again.retain_until == UNTIL + timedelta(days=5)

"""One GET per record: the object and lock checks take the checksum, size, lock and hold from the
GET's answer when it has them all, and ask HEAD when it does not (or when the GET failed for a
reason other than a missing version); the bytes are always hashed as read, never trusted to the
store's checksum. The real store's side is tests/integration/verification/test_fixity_reads.py."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archive.catalog import CatalogRow
from archive.core.errors import StoreError
from archive.core.settings import SealSettings
from archive.seal import LocalKeyring, ObjectIdentity, seal
from archive.sign import TrustPolicy
from archive.store import MetaReader, ObjectHead, ObjectRead
from tests.support.memstore import MemoryStore
from verification.checks import LOCK, OBJECT, UNSEAL
from verification.config import HoldSet, VerificationSettings
from verification.evidence import Environment
from verification.results import RecordResult, Status
from verification.settings import VerifySettings, weak_table
from verification.verifier import Verifier

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
SEAL = SealSettings()
PDF = b"%PDF-1.7 not really a pdf, enough for fixity"


class GetStore(MemoryStore):
    """A store whose GET answers the metadata (as S3 with ChecksumMode); ``answer``: whether it
    does, ``serve``: other bytes to serve under the same metadata, ``fail``: the GET's error."""

    def __init__(self) -> None:
        super().__init__()
        self.answer, self.serve = True, b""
        self.fail: Exception | None = None
        self.heads = 0

    def read(self, key: str, *, version_id: str) -> ObjectRead:
        if self.fail is not None:
            raise self.fail
        data = self.serve or super().get(key, version_id=version_id)
        head = super().head(key, version_id=version_id) if self.answer else None
        return ObjectRead(data, hashlib.sha256(data).hexdigest(), head)

    def get(self, key: str, *, version_id: str) -> bytes:
        raise AssertionError("a store that reads with metadata is read with read()")

    def head(self, key: str, *, version_id: str) -> ObjectHead:
        self.heads += 1
        return super().head(key, version_id=version_id)


@pytest.fixture
def keys(tmp_path: Path) -> LocalKeyring:
    return LocalKeyring.create(tmp_path / "keys", kek_id="test-kek")


def _record(store: GetStore, keys: LocalKeyring) -> CatalogRow:
    key, encounter = "records/v1/BV01/01/r1" + "0" * 38, "enc-1"
    sealed = seal(
        PDF, identity=ObjectIdentity(store.bucket, key, encounter), keys=keys, settings=SEAL
    )
    until = NOW + timedelta(days=3650)
    put = MemoryStore.put_locked(store, key, sealed, retain_until=until)
    sha = hashlib.sha256
    return CatalogRow(
        encounter_id=encounter,
        patient_pseudonym=sha(b"p").hexdigest(),
        facility="BV01",
        admitted_at=NOW - timedelta(days=5),
        discharged_at=NOW - timedelta(days=1),
        retention_class="standard-10y",
        retain_until=until,
        bucket=store.bucket,
        object_key=key,
        version_id=put.version_id,
        pdf_sha256=sha(PDF).hexdigest(),
        data_sha256=sha(b"data").hexdigest(),
        sealed_sha256=sha(sealed).hexdigest(),
        sealed_size=len(sealed),
        signer_cert_sha256=sha(b"signer").hexdigest(),
        signed_at=NOW - timedelta(days=1),
        kek_id="test-kek",
        kek_version=1,
        format_version=1,
        run_id="20261122T190000Z-x",
    )


def _verify(store: GetStore, keys: LocalKeyring, row: CatalogRow) -> RecordResult:
    env = Environment(
        store=store,
        keys=keys,
        seal=SEAL,
        trust=TrustPolicy(signer_roots=(), tsa_roots=(), hospital_signers=frozenset()),
        holds=HoldSet(),
        settings=VerificationSettings(),
        weak=weak_table(VerifySettings()),
    )
    return Verifier.create(checks=(OBJECT, UNSEAL, LOCK), env=env).verify(row, now=NOW)


def _codes(result: RecordResult) -> dict[str, str]:
    return {c.check: c.reason_code for c in result.checks}


def test_a_get_that_answers_the_metadata_needs_no_head(keys: LocalKeyring) -> None:
    store = GetStore()
    assert isinstance(store, MetaReader)
    row = _record(store, keys)
    result = _verify(store, keys, row)
    assert result.status is Status.PASSED, _codes(result)
    assert store.heads == 0
    store.set_legal_hold(row.object_key, version_id=row.version_id, on=True)
    assert _codes(_verify(store, keys, row))["lock"] == "lock.hold_mismatch"  # from the GET
    assert store.heads == 0


def test_a_get_that_leaves_the_metadata_out_is_followed_by_a_head(keys: LocalKeyring) -> None:
    store = GetStore()
    store.answer = False
    row = _record(store, keys)
    assert _verify(store, keys, row).status is Status.PASSED
    assert store.heads == 1  # once for the object and the lock checks
    store.set_legal_hold(row.object_key, version_id=row.version_id, on=True)
    assert _codes(_verify(store, keys, row))["lock"] == "lock.hold_mismatch"  # from the HEAD


def test_bytes_served_changed_are_found_though_the_metadata_is_unchanged(
    keys: LocalKeyring,
) -> None:
    store = GetStore()
    row = _record(store, keys)
    sealed = MemoryStore.get(store, row.object_key, version_id=row.version_id)
    store.serve = sealed[:100] + bytes([sealed[100] ^ 1]) + sealed[101:]
    result = _verify(store, keys, row)
    codes = _codes(result)
    assert codes["object"] == "object.sealed_sha256_mismatch"
    assert codes["unseal"] == "unseal.not_reached"
    assert next(c for c in result.checks if c.check == "lock").status is Status.PASSED


def test_a_get_that_fails_leaves_the_object_present_unreadable_and_its_lock_checked(
    keys: LocalKeyring,
) -> None:
    store = GetStore()
    row = _record(store, keys)
    store.fail = StoreError("GetObject: InternalError (a damaged needle)")
    result = _verify(store, keys, row)
    codes = _codes(result)
    assert codes["object"] == "object.unreadable"
    assert codes["unseal"] == "unseal.not_reached"
    assert next(c for c in result.checks if c.check == "lock").status is Status.PASSED
    assert store.heads == 1

"""SealedStore: metadata reaches the bucket only sealed, and put_locked stays create-once on the
plaintext although sealing is randomised."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from archive.audit import AUDIT_PREFIX, AuditEvent, AuditLog
from archive.catalog import BUCKET_PREFIX, LEGACY_BUCKET_PREFIX, Catalog, manifest_key
from archive.core.errors import CatalogError, ManifestCorruptError, ObjectConflictError, SealError
from archive.core.settings import SealSettings, load_settings
from archive.seal import MAGIC, LocalKeyring
from archive.store import SealedStore, sha256_hex
from tests.support.catalog import NOW, RETAIN, make_rows
from tests.support.memstore import MemoryStore
from verification.inventory import compare_bucket_copies
from verification.results import Status

UNTIL = datetime(2126, 1, 1, tzinfo=UTC)
KEY = "catalog/sealed/v1/manifests/0000000001.parquet"
DATA = b'{"encounter_id":"E-2026-0001","retention_class":"mental"}'


def _sealed(tmp_path: Path, store: MemoryStore, name: str = "keys") -> SealedStore:
    keys = LocalKeyring.create(tmp_path / name, kek_id="emr-archive-kek")
    return SealedStore(store, keys=keys, settings=SealSettings())


def test_round_trip_stores_only_an_envelope(tmp_path: Path) -> None:
    inner = MemoryStore()
    sealed = _sealed(tmp_path, inner)
    put = sealed.put_locked(KEY, DATA, retain_until=UNTIL)
    assert (put.created, put.sha256, put.size) == (True, sha256_hex(DATA), len(DATA))
    raw = inner.get(KEY, version_id=put.version_id)
    assert raw.startswith(MAGIC)
    assert b"E-2026-0001" not in raw
    assert b"mental" not in raw
    assert sealed.get(KEY, version_id=put.version_id) == DATA


def test_identical_plaintext_is_the_existing_version(tmp_path: Path) -> None:
    inner = MemoryStore()
    sealed = _sealed(tmp_path, inner)
    first = sealed.put_locked(KEY, DATA, retain_until=UNTIL)
    again = sealed.put_locked(KEY, DATA, retain_until=UNTIL)
    assert again.created is False
    assert (again.version_id, again.sha256, again.size) == (
        first.version_id,
        first.sha256,
        first.size,
    )
    assert len(list(inner.list_versions(KEY))) == 1


def test_different_plaintext_is_a_conflict(tmp_path: Path) -> None:
    inner = MemoryStore()
    sealed = _sealed(tmp_path, inner)
    sealed.put_locked(KEY, DATA, retain_until=UNTIL)
    with pytest.raises(ObjectConflictError, match="different content"):
        sealed.put_locked(KEY, DATA + b" ", retain_until=UNTIL)
    assert len(list(inner.list_versions(KEY))) == 1


def test_a_plaintext_object_under_the_key_is_a_conflict(tmp_path: Path) -> None:
    inner = MemoryStore()
    inner.put_locked(KEY, DATA, retain_until=UNTIL)  # e.g. written without sealing
    with pytest.raises(ObjectConflictError, match="does not open"):
        _sealed(tmp_path, inner).put_locked(KEY, DATA, retain_until=UNTIL)


def test_another_keyring_cannot_read(tmp_path: Path) -> None:
    inner = MemoryStore()
    put = _sealed(tmp_path, inner, "ours").put_locked(KEY, DATA, retain_until=UNTIL)
    theirs = _sealed(tmp_path, inner, "theirs")
    with pytest.raises(SealError):
        theirs.get(KEY, version_id=put.version_id)
    with pytest.raises(ObjectConflictError):
        theirs.put_locked(KEY, DATA, retain_until=UNTIL)


def test_a_copy_moved_to_another_key_does_not_open(tmp_path: Path) -> None:
    inner = MemoryStore()
    sealed = _sealed(tmp_path, inner)
    put = sealed.put_locked(KEY, DATA, retain_until=UNTIL)
    other = KEY.replace("0001", "0002")
    inner.put_locked(other, inner.get(KEY, version_id=put.version_id), retain_until=UNTIL)
    moved = inner.latest(other)
    assert moved is not None
    with pytest.raises(SealError):
        sealed.get(other, version_id=moved.version_id)


def test_heads_claim_no_plaintext_checksum(tmp_path: Path) -> None:
    inner = MemoryStore()
    sealed = _sealed(tmp_path, inner)
    put = sealed.put_locked(KEY, DATA, retain_until=UNTIL)
    head, latest = sealed.head(KEY, version_id=put.version_id), sealed.latest(KEY)
    assert latest is not None
    assert head.sha256 is None
    assert latest.sha256 is None
    assert head.lock.retain_until == UNTIL
    assert head.version_id == put.version_id
    assert sealed.latest("nothing/here") is None


def test_lock_operations_pass_through(tmp_path: Path) -> None:
    inner = MemoryStore()
    sealed = _sealed(tmp_path, inner)
    put = sealed.put_locked(KEY, DATA, retain_until=UNTIL)
    sealed.set_legal_hold(KEY, version_id=put.version_id, on=True)
    later = datetime(2127, 1, 1, tzinfo=UTC)
    sealed.extend_retention(KEY, version_id=put.version_id, retain_until=later)
    lock = inner.head(KEY, version_id=put.version_id).lock
    assert (lock.legal_hold, lock.retain_until) == (True, later)
    assert [v.key for v in sealed.list_versions("catalog/")] == [KEY]
    assert sealed.bucket == inner.bucket


def test_for_settings_uses_the_configured_keyring_and_never_wraps_twice(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    LocalKeyring.create(settings.keyring_dir, kek_id=settings.keys.kek_id)
    inner = MemoryStore()
    sealed = SealedStore.for_settings(settings, inner)
    assert SealedStore.for_settings(settings, sealed) is sealed
    put = sealed.put_locked(KEY, DATA, retain_until=UNTIL)
    assert SealedStore.for_settings(settings, inner).get(KEY, version_id=put.version_id) == DATA


# --- the catalog and the audit log through a SealedStore ------------------------------------------


def _catalog_in(tmp_path: Path) -> tuple[Catalog, MemoryStore, SealedStore]:
    inner = MemoryStore()
    sealed = _sealed(tmp_path, inner)
    catalog = Catalog.open(tmp_path / "catalog", create=True)
    for n in (1, 2):
        catalog.append(
            make_rows(100 * n, 3, f"run-{n}"),
            run_id=f"run-{n}",
            now=NOW,
            store=sealed,
            retain_until=RETAIN,
        )
    return catalog, inner, sealed


def test_catalog_copies_are_sealed_and_rebuild_and_compare_through_it(tmp_path: Path) -> None:
    catalog, inner, sealed = _catalog_in(tmp_path)
    for v in inner.list_versions(BUCKET_PREFIX):
        raw = inner.get(v.key, version_id=v.version_id)
        assert raw.startswith(MAGIC)
        assert b"PAR1" not in raw
    assert catalog.sync(sealed, retain_until=RETAIN) == ()  # equal plaintext: nothing new
    rebuilt = Catalog.rebuild(tmp_path / "rebuilt", sealed)
    assert [m.sha256 for m in rebuilt.manifests] == [m.sha256 for m in catalog.manifests]
    assert compare_bucket_copies(catalog, sealed).status is Status.PASSED


def test_a_damaged_sealed_copy_is_reported(tmp_path: Path) -> None:
    catalog, inner, sealed = _catalog_in(tmp_path)
    head = inner.latest(manifest_key(1))
    assert head is not None
    raw = bytearray(inner.get(head.key, version_id=head.version_id))
    raw[-1] ^= 1
    inner.corrupt(head.key, version_id=head.version_id, data=bytes(raw))
    result = compare_bucket_copies(catalog, sealed)
    assert (result.status, result.reason_code) == (Status.FAILED, "catalog.copy_unreadable")
    with pytest.raises(ManifestCorruptError, match="does not open"):
        Catalog.rebuild(tmp_path / "rebuilt", sealed)


def test_audit_for_settings_seals_segments_and_keeps_files_private(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    LocalKeyring.create(settings.keyring_dir, kek_id=settings.keys.kek_id)
    inner = MemoryStore()
    log = AuditLog.for_settings(settings, inner)
    log.append(
        AuditEvent(
            actor="Nguyễn Thị Lan",
            role="records-officer",
            action="hold.add",
            recorded=NOW,
            entities=(("encounter", "E-2026-0001"),),
            reason="TA-12/2026",
        )
    )
    assert log.flush(now=NOW) == 1
    [version] = list(inner.list_versions(AUDIT_PREFIX))
    raw = inner.get(version.key, version_id=version.version_id)
    assert raw.startswith(MAGIC)
    assert b"E-2026-0001" not in raw
    assert b"TA-12/2026" not in raw
    assert log.verify_chain().passed
    for path in (settings.audit_dir / "HEAD", settings.audit_dir / "segments" / "0000000001.jsonl"):
        assert path.stat().st_mode & 0o777 == 0o600


def test_rebuild_from_a_bucket_with_only_plaintext_copies_says_what_to_do(tmp_path: Path) -> None:
    inner = MemoryStore()
    inner.put_locked(f"{LEGACY_BUCKET_PREFIX}0000000001.parquet", b"PAR1", retain_until=UNTIL)
    with pytest.raises(CatalogError, match="catalog verify"):
        Catalog.rebuild(tmp_path / "rebuilt", _sealed(tmp_path, inner))

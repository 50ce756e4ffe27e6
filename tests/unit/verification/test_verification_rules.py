"""The verifier's fail-closed rules, on the in-memory store (no network, no PKI).

The documents here are not signed PDFs: these tests are about what the verifier concludes from
its checks' results, exceptions and missing inputs, not about signatures (see the integration
tests for those).
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from archive.catalog import CatalogRow
from archive.core.errors import StoreUnavailableError
from archive.core.settings import SealSettings
from archive.seal import LocalKeyring, ObjectIdentity, seal
from archive.sign import TrustPolicy
from archive.store import ObjectVersion, RehomedStore
from archive.store.rehomed import (
    GENESIS,
    Rehoming,
    append_map,
    encode_segment,
    read_map,
    segment_key,
)
from tests.support.memstore import MemoryStore
from verification.checks import FIXITY, LOCK, OBJECT, UNSEAL, RecordCheck
from verification.config import HoldSet, VerificationSettings
from verification.document import check_signature, verify_document
from verification.evidence import Environment, Evidence
from verification.inventory import inventory
from verification.rehomed import REHOMED, check_rehomed
from verification.results import CheckResult, Status, VerificationError, bottom_line
from verification.select import Mode, Selection, select
from verification.settings import VerifySettings, weak_table
from verification.verifier import Verifier

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
SEAL = SealSettings()
# Nothing is trusted: these tests never reach a valid signature.
NO_TRUST = TrustPolicy(signer_roots=(), tsa_roots=(), hospital_signers=frozenset())
PLAINTEXT = b"%PDF-1.7 not really a pdf, enough for fixity"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def keys(tmp_path: Path) -> LocalKeyring:
    return LocalKeyring.create(tmp_path / "keys", kek_id="test-kek")


def _archive(store: MemoryStore, keys: LocalKeyring, i: int, *, run_id: str) -> CatalogRow:
    key = f"records/v1/BV01/{i:02x}/r1{i:038x}"
    encounter = f"enc-{i}"
    sealed = seal(
        PLAINTEXT, identity=ObjectIdentity(store.bucket, key, encounter), keys=keys, settings=SEAL
    )
    until = NOW + timedelta(days=3650)
    put = store.put_locked(key, sealed, retain_until=until)
    return CatalogRow(
        encounter_id=encounter,
        patient_pseudonym=_sha(b"p"),
        facility="BV01",
        admitted_at=NOW - timedelta(days=5),
        discharged_at=NOW - timedelta(days=1),
        retention_class="standard-10y",
        retain_until=until,
        bucket=store.bucket,
        object_key=key,
        version_id=put.version_id,
        pdf_sha256=_sha(PLAINTEXT),
        data_sha256=_sha(b"data"),
        sealed_sha256=_sha(sealed),
        sealed_size=len(sealed),
        signer_cert_sha256=_sha(b"signer"),
        signed_at=NOW - timedelta(days=1),
        kek_id="test-kek",
        kek_version=1,
        format_version=1,
        run_id=run_id,
    )


def _env(store: object, keys: LocalKeyring, holds: HoldSet | None = None) -> Environment:
    return Environment(
        store=store,  # type: ignore[arg-type]
        keys=keys,
        seal=SEAL,
        trust=NO_TRUST,
        holds=holds or HoldSet(),
        settings=VerificationSettings(),
        weak=weak_table(VerifySettings()),
    )


def _verify(row: CatalogRow, env: Environment, checks: tuple[RecordCheck, ...] = FIXITY[:2]):  # type: ignore[no-untyped-def]
    return Verifier.create(checks=(*checks, LOCK), env=env).verify(row, now=NOW)


def _codes(result: object) -> dict[str, str]:
    return {c.check: c.reason_code for c in result.checks}  # type: ignore[attr-defined]


def test_no_checks_is_an_error_never_a_pass(keys: LocalKeyring) -> None:
    with pytest.raises(VerificationError):
        Verifier.create(checks=[], env=_env(MemoryStore(), keys))
    with pytest.raises(VerificationError):
        bottom_line([])


def test_duplicate_check_names_are_refused(keys: LocalKeyring) -> None:
    with pytest.raises(VerificationError):
        Verifier.create(checks=[OBJECT, OBJECT], env=_env(MemoryStore(), keys))


def test_indeterminate_is_never_a_pass() -> None:
    ok = CheckResult.passed("a", "fine")
    unsure = CheckResult.indeterminate("b", "b.error", "could not tell")
    assert bottom_line([ok, unsure]) is Status.INDETERMINATE
    assert bottom_line([ok, unsure, CheckResult.failed("c", "c.bad", "bad")]) is Status.FAILED
    assert bottom_line([ok]) is Status.PASSED


def test_an_intact_record_passes_fixity_and_lock(keys: LocalKeyring) -> None:
    store = MemoryStore()
    row = _archive(store, keys, 1, run_id="20261122T010000Z-abc")
    result = _verify(row, _env(store, keys))
    assert result.status is Status.PASSED, result.checks
    assert _codes(result) == {"object": "object.ok", "unseal": "unseal.ok", "lock": "lock.ok"}
    assert result.archive_day == "2026-11-22"


def test_changed_bytes_fail_once_and_dependent_checks_are_not_reached(keys: LocalKeyring) -> None:
    store = MemoryStore()
    row = _archive(store, keys, 1, run_id="r")
    data = bytearray(store.get(row.object_key, version_id=row.version_id))
    data[len(data) // 2] ^= 0x01
    store.corrupt(row.object_key, version_id=row.version_id, data=bytes(data))
    result = _verify(row, _env(store, keys))
    assert result.status is Status.FAILED
    assert result.reason.reason_code == "object.checksum_mismatch"
    assert _codes(result)["unseal"] == "unseal.not_reached"
    assert _codes(result)["lock"] == "lock.ok"


def test_a_missing_version_fails_and_lock_is_not_reached(keys: LocalKeyring) -> None:
    store = MemoryStore()
    row = _archive(store, keys, 1, run_id="r")
    ghost = CatalogRow.from_dict({**_asdict(row), "version_id": "v-does-not-exist"})
    result = _verify(ghost, _env(store, keys))
    assert _codes(result) == {
        "object": "object.missing",
        "unseal": "unseal.not_reached",
        "lock": "lock.not_reached",
    }


def test_a_record_moved_to_another_identity_does_not_unseal(keys: LocalKeyring) -> None:
    store = MemoryStore()
    row = _archive(store, keys, 1, run_id="r")
    moved = CatalogRow.from_dict({**_asdict(row), "encounter_id": "enc-someone-else"})
    result = _verify(moved, _env(store, keys))
    assert _codes(result)["unseal"] == "unseal.integrity"
    assert result.status is Status.FAILED


def test_legal_hold_must_match_the_expected_holds(keys: LocalKeyring) -> None:
    store = MemoryStore()
    row = _archive(store, keys, 1, run_id="r")
    store.set_legal_hold(row.object_key, version_id=row.version_id, on=True)
    assert _codes(_verify(row, _env(store, keys)))["lock"] == "lock.hold_mismatch"
    held = _env(store, keys, HoldSet.of([row.encounter_id]))
    assert _verify(row, held).status is Status.PASSED


def test_a_retain_until_earlier_than_the_catalog_fails(keys: LocalKeyring) -> None:
    store = MemoryStore()
    row = _archive(store, keys, 1, run_id="r")
    later = CatalogRow.from_dict({**_asdict(row), "retain_until": row.retain_until + timedelta(1)})
    assert _codes(_verify(later, _env(store, keys)))["lock"] == "lock.retention_shortened"


def test_an_exception_inside_a_check_is_indeterminate_with_its_type(keys: LocalKeyring) -> None:
    store = MemoryStore()
    row = _archive(store, keys, 1, run_id="r")

    def boom(ev: Evidence, now: datetime) -> CheckResult:
        raise KeyError("x")

    def wrong(ev: Evidence, now: datetime) -> CheckResult:
        return CheckResult.passed("someone-else", "not mine")

    checks = (RecordCheck("boom", boom), RecordCheck("wrong", wrong))
    result = Verifier.create(checks=checks, env=_env(store, keys)).verify(row, now=NOW)
    assert result.status is Status.INDETERMINATE
    assert _codes(result) == {"boom": "boom.error", "wrong": "wrong.error"}
    assert "KeyError" in result.checks[0].message


def test_an_unreachable_store_is_indeterminate(keys: LocalKeyring) -> None:
    class Down(MemoryStore):
        def head(self, key: str, *, version_id: str):  # type: ignore[no-untyped-def]
            raise StoreUnavailableError("connection refused")

        get = head

    store = Down()
    row = _archive(store, keys, 1, run_id="r")
    result = _verify(row, _env(store, keys))
    assert result.status is Status.INDETERMINATE
    assert _codes(result)["object"] == "object.store_unavailable"


def test_a_file_the_validator_cannot_read_is_not_a_pass() -> None:
    result = check_signature(b"%PDF-1.7\nnothing", trust=NO_TRUST, now=NOW)
    assert result.status is not Status.PASSED
    results = verify_document(b"not a pdf", trust=NO_TRUST, now=NOW)
    assert [r.check for r in results] == ["signature", "pdfa", "embedded-data", "conversion-mark"]
    assert all(r.status is not Status.PASSED for r in results)


def test_inventory_finds_orphans_newer_versions_and_missing_versions() -> None:
    t = NOW
    listed = [
        ObjectVersion("records/v1/a", "1", 10, False, False, t),
        ObjectVersion("records/v1/a", "2", 10, True, False, t),  # written over a catalogued key
        ObjectVersion("records/v1/orphan", "1", 10, True, False, t),
        ObjectVersion("records/v1/c", "9", 0, True, True, t),  # delete marker on catalogued key
        ObjectVersion("quarantine/v1/q", "1", 10, True, False, t),  # not a record
    ]
    catalogued = [
        ("records/v1/a", "1"),
        ("records/v1/b", "1"),
        ("records/v1/c", "1"),
        ("records/v1/d", "1"),
    ]
    result, findings = inventory(catalogued, listed, verified={("records/v1/d", "1")})
    assert result.status is Status.FAILED
    assert sorted((f.reason_code, f.object_key) for f in findings) == [
        ("inventory.delete_marker", "records/v1/c"),
        ("inventory.missing", "records/v1/b"),
        ("inventory.missing", "records/v1/c"),
        ("inventory.newer_version", "records/v1/a"),
        ("inventory.orphan", "records/v1/orphan"),
    ]
    clean, none = inventory([("records/v1/a", "1")], listed[:1], verified=set())
    assert clean.status is Status.PASSED
    assert none == ()


def test_sample_takes_a_share_of_every_archive_day_reproducibly(keys: LocalKeyring) -> None:
    store = MemoryStore()
    rows = [_archive(store, keys, i, run_id=f"202611{10 + i % 3:02d}T010000Z-x") for i in range(60)]
    rows += [_archive(store, keys, 99, run_id="20261101T010000Z-x")]  # a day with one record
    selection = Selection(mode=Mode.SAMPLE, share=0.1, seed=7)
    picked = select(rows, selection, tz="Asia/Ho_Chi_Minh")
    days = sorted({r.run_id[:8] for r in picked})
    assert days == ["20261101", "20261110", "20261111", "20261112"]
    assert len(picked) == 1 + 3 * 2
    assert picked == select(rows, selection, tz="Asia/Ho_Chi_Minh")
    since = Selection(mode=Mode.SINCE, since=date(2026, 11, 23))
    assert len(select(rows, since, tz="Asia/Ho_Chi_Minh")) == 0
    with pytest.raises(VerificationError):
        Selection(mode=Mode.SAMPLE, share=0.1)


def _asdict(row: CatalogRow) -> dict[str, object]:
    return {name: getattr(row, name) for name in CatalogRow.__dataclass_fields__}


def test_bytes_changed_under_an_unchanged_checksum_are_caught_by_hashing(
    keys: LocalKeyring,
) -> None:
    """A store that serves changed bytes but still reports the checksum written at upload (bit
    rot below the API of a store without its own CRC)."""

    class Rotten(MemoryStore):
        def get(self, key: str, *, version_id: str) -> bytes:
            data = bytearray(super().get(key, version_id=version_id))
            data[len(data) // 2] ^= 0x01
            return bytes(data)

    store = Rotten()
    row = _archive(store, keys, 1, run_id="r")
    result = _verify(row, _env(store, keys))
    assert _codes(result) == {
        "object": "object.sealed_sha256_mismatch",
        "unseal": "unseal.not_reached",
        "lock": "lock.ok",
    }


def test_as_of_a_date_the_lock_holds_while_retention_runs_and_may_end_with_it(
    keys: LocalKeyring,
) -> None:
    store = MemoryStore()
    row = _archive(store, keys, 1, run_id="r")  # retained 10 years from NOW
    within = dataclasses.replace(_env(store, keys), as_of=NOW + timedelta(days=3000))
    assert _codes(_verify(row, within))["lock"] == "lock.ok"
    after = dataclasses.replace(_env(store, keys), as_of=NOW + timedelta(days=3651))
    result = _verify(row, after)
    assert _codes(result)["lock"] == "lock.retention_ended"
    assert result.status is Status.PASSED
    # a lock shortened in the store is still found as of any date
    later = CatalogRow.from_dict({**_asdict(row), "retain_until": NOW + timedelta(days=4000)})
    assert _codes(_verify(later, within))["lock"] == "lock.retention_shortened"


# -- a damaged or forged re-homed map is a finding, not a stop ---------------------------------
REHOMED_CHECKS = (OBJECT, UNSEAL, LOCK)


def _rehome(store: MemoryStore, row: CatalogRow) -> None:
    """What a primary repair leaves: the catalogued version gone, the bytes under a new id."""
    data = store.get(row.object_key, version_id=row.version_id)
    del store._objects[row.object_key]
    put = store.put_locked(row.object_key, data, retain_until=row.retain_until)
    entry = Rehoming(row.object_key, row.version_id, put.version_id, row.sealed_sha256)
    append_map(store, read_map(store), [(entry, row.retain_until)], now=NOW)


def _reader(store: MemoryStore, rows: list[CatalogRow]) -> RehomedStore:
    digests = {(r.object_key, r.version_id): r.sealed_sha256 for r in rows}
    return RehomedStore(store, catalogued=lambda ps: {p: digests[p] for p in ps if p in digests})


def test_a_broken_map_fails_the_records_that_need_it_and_no_other(keys: LocalKeyring) -> None:
    store = MemoryStore()
    rows = [_archive(store, keys, i, run_id="20261122T010000Z-abc") for i in range(3)]
    _rehome(store, rows[0])
    reader = _reader(store, rows)
    verifier = Verifier.create(checks=REHOMED_CHECKS, env=_env(reader, keys))
    assert [verifier.verify(r, now=NOW).status for r in rows] == [Status.PASSED] * 3
    whole, _ = check_rehomed(reader)
    assert whole is not None
    assert (whole.check, whole.status) == (REHOMED, Status.PASSED)

    # A segment written outside the repair, out of chain: the whole map is refused.
    store.put_locked(segment_key(2), encode_segment(2, GENESIS, [], written=NOW), retain_until=NOW)
    reader = _reader(store, rows)
    verifier = Verifier.create(checks=REHOMED_CHECKS, env=_env(reader, keys))
    results = [verifier.verify(r, now=NOW) for r in rows]
    assert _codes(results[0]) == {
        "object": "object.rehomed_broken",
        "unseal": "unseal.not_reached",
        "lock": "lock.not_reached",
    }
    assert results[0].status is Status.FAILED
    assert [r.status for r in results[1:]] == [Status.PASSED] * 2

    check, listing = check_rehomed(reader)
    assert check is not None
    assert (check.check, check.status, check.reason_code) == (
        REHOMED,
        Status.FAILED,
        "rehomed.broken",
    )
    assert "does not chain" in check.message
    catalogued = [(r.object_key, r.version_id) for r in rows]
    result, findings = inventory(
        catalogued,
        listing.list_versions("records/"),
        verified={catalogued[1]},
        map_refused=True,
    )
    assert result.status is Status.FAILED
    assert sorted((f.reason_code, f.object_key) for f in findings) == [
        ("rehomed.broken", rows[0].object_key),  # its restored copy, which no map vouches for
        ("rehomed.broken", rows[0].object_key),  # its catalogued version, gone
    ]
    text = " ".join([check.message, *(f.message for f in findings)])
    assert all(r.encounter_id not in text for r in rows)  # keys and ids, no PHI


def test_no_map_adds_no_check_and_lists_through_the_store(keys: LocalKeyring) -> None:
    store = MemoryStore()
    _archive(store, keys, 1, run_id="r")
    reader = _reader(store, [])
    check, listing = check_rehomed(reader)
    assert (check, listing) == (None, reader)
    assert check_rehomed(store) == (None, store)

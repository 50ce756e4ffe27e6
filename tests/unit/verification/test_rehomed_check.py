"""A damaged or forged re-homed map is a finding, not a stop: the records that need it fail
``object.rehomed_broken``, the run says ``rehomed.broken``, the others are verified (in-memory
stores; the real primary loss is tests/integration/infra/test_primary_repair.py)."""

from __future__ import annotations

from archive.catalog import CatalogRow
from archive.seal import LocalKeyring
from archive.store import RehomedStore
from archive.store.rehomed import (
    GENESIS,
    Rehoming,
    append_map,
    encode_segment,
    read_map,
    segment_key,
)
from tests.support.memstore import MemoryStore
from tests.unit.verification.test_verification_rules import NOW, _archive, _codes, _env, keys
from verification.checks import LOCK, OBJECT, UNSEAL
from verification.inventory import inventory
from verification.rehomed import REHOMED, check_rehomed
from verification.results import Status
from verification.verifier import Verifier

__all__ = ["keys"]  # the keyring fixture
CHECKS = (OBJECT, UNSEAL, LOCK)


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
    verifier = Verifier.create(checks=CHECKS, env=_env(reader, keys))
    assert [verifier.verify(r, now=NOW).status for r in rows] == [Status.PASSED] * 3
    whole, _ = check_rehomed(reader)
    assert whole is not None
    assert (whole.check, whole.status) == (REHOMED, Status.PASSED)

    # A segment written outside the repair, out of chain: the whole map is refused.
    store.put_locked(segment_key(2), encode_segment(2, GENESIS, [], written=NOW), retain_until=NOW)
    reader = _reader(store, rows)
    verifier = Verifier.create(checks=CHECKS, env=_env(reader, keys))
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

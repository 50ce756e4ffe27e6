"""The re-homed map and the store that reads through it (in-memory stores: logic only; the real
wipe of a primary SeaweedFS is tests/integration/infra/test_primary_repair.py)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from archive.core.errors import ObjectNotFoundError, RehomedError
from archive.store import ObjectLock, ReplicatedStore, sha256_hex
from archive.store.rehomed import (
    GENESIS,
    REHOMED_PREFIX,
    Rehoming,
    append_map,
    encode_segment,
    read_map,
    segment_key,
)
from archive.store.rehomed_store import RehomedStore
from archive.store.repair import repair
from infra.repair import rehome
from tests.support.memstore import MemoryStore

UNTIL = datetime(2056, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 12, 7, tzinfo=UTC)
KEYS = [f"records/v1/01001/ab/{i:03d}.sealed" for i in range(5)]


@dataclass
class Sites:
    replica: MemoryStore
    primary: MemoryStore  # the new, repaired one
    versions: dict[str, tuple[str, str]]  # key -> (catalogued version, catalog's SHA-256)

    def lookup(self, pairs: Collection[tuple[str, str]]) -> Mapping[tuple[str, str], str]:
        known = {(k, v): sha for k, (v, sha) in self.versions.items()}
        return {p: known[p] for p in pairs if p in known}

    def reader(self) -> RehomedStore:
        return RehomedStore(self.primary, catalogued=self.lookup)


def lost_and_repaired() -> Sites:
    """Records written to both sites, the primary lost and repaired from the replica (its new
    store numbers versions from 500: S3 never gives a restored copy its old id)."""
    old, replica = MemoryStore(), MemoryStore()
    both = ReplicatedStore(primary=old, replica=replica)
    versions = {}
    for i, key in enumerate(KEYS):
        put = both.put_locked(key, f"sealed {i}".encode(), retain_until=UNTIL + timedelta(i))
        versions[key] = (put.version_id, put.sha256)
    both.put_locked("audit/sealed/v1/000001", b"segment", retain_until=UNTIL)
    new = MemoryStore(_ids=itertools.count(500))
    report = repair(
        replica,
        new,
        catalogued={k: sha for k, (_, sha) in versions.items()},
        plain_prefixes=("audit/",),
        threads=2,
    )
    assert report.ok, report.refused
    assert rehome(ReplicatedStore(primary=new, replica=replica), new, versions, report) == (5, 1)
    return Sites(replica, new, versions)


def test_a_restored_record_is_read_under_its_catalogued_version() -> None:
    sites = lost_and_repaired()
    store = sites.reader()
    key = KEYS[2]
    catalogued, sha = sites.versions[key]
    with pytest.raises(ObjectNotFoundError):
        sites.primary.get(key, version_id=catalogued)  # the bare store: that id is gone
    assert store.get(key, version_id=catalogued) == b"sealed 2"
    head = store.head(key, version_id=catalogued)
    assert (head.version_id, head.sha256) == (catalogued, sha)
    listed = {(v.key, v.version_id) for v in store.list_versions("records/")}
    assert listed == {(k, v) for k, (v, _) in sites.versions.items()}
    latest = store.latest(key)
    assert latest is not None
    assert latest.version_id == catalogued
    # The map itself is at both sites, locked until the longest lock of what it maps.
    for site in (sites.primary, sites.replica):
        (segment,) = [v for v in site.list_versions(REHOMED_PREFIX)]
        lock = site.head(segment.key, version_id=segment.version_id).lock
        assert lock.retain_until == UNTIL + timedelta(4)


def test_holds_retention_and_deletion_reach_the_restored_version() -> None:
    sites = lost_and_repaired()
    store = sites.reader()
    key = KEYS[0]
    catalogued, _ = sites.versions[key]
    restored = sites.primary.latest(key)
    assert restored is not None
    later = UNTIL + timedelta(days=4000)
    store.extend_retention(key, version_id=catalogued, retain_until=later)
    store.set_legal_hold(key, version_id=catalogued, on=True)
    now = sites.primary.head(key, version_id=restored.version_id).lock
    assert (now.retain_until, now.legal_hold) == (later, True)
    segment = sites.primary.latest(segment_key(1))
    assert segment is not None  # the map outlives what it maps, and is held with it
    assert (segment.lock.retain_until, segment.lock.legal_hold) == (later, True)
    short = sites.reader()
    with pytest.raises(Exception, match="locked"):  # S3 would say "success" for a missing id
        short.delete_version(KEYS[1], version_id=sites.versions[KEYS[1]][0])
    assert sites.primary.latest(KEYS[1]) is not None


def test_repairing_a_primary_that_still_holds_its_objects_is_a_no_op() -> None:
    primary, replica = MemoryStore(), MemoryStore()
    both = ReplicatedStore(primary=primary, replica=replica)
    versions = {}
    for key in KEYS:
        put = both.put_locked(key, key.encode(), retain_until=UNTIL)
        versions[key] = (put.version_id, put.sha256)
    report = repair(replica, primary, catalogued={k: s for k, (_, s) in versions.items()})
    assert report.ok
    assert report.copied == ()
    assert rehome(both, primary, versions, report) == (0, 0)
    assert list(primary.list_versions(REHOMED_PREFIX)) == []
    # And a second repair of a repaired primary writes no second entry.
    sites = lost_and_repaired()
    digests = {k: s for k, (_, s) in sites.versions.items()}
    again = repair(sites.replica, sites.primary, catalogued=digests, plain_prefixes=("audit/",))
    assert again.copied == ()
    assert rehome(sites.replica, sites.primary, sites.versions, again) == (0, 0)


def _forge(sites: Sites, entries: list[Rehoming]) -> None:
    """Someone with write access chains a well-formed, locked segment onto the map."""
    rmap = read_map(sites.primary)
    append_map(sites.primary, rmap, [(e, UNTIL) for e in entries], now=NOW)


def test_an_entry_pointing_at_other_bytes_is_refused() -> None:
    sites = lost_and_repaired()
    key = KEYS[3]
    catalogued, _ = sites.versions[key]
    # The forger cannot change a locked version, so plants other bytes under the key (a second
    # version) and maps the catalogued version to them, with their true SHA-256.
    other = sites.primary.put_locked(
        "records/v1/01001/ab/zzz.sealed", b"forged", retain_until=UNTIL
    )
    sites.primary._objects[key].append(sites.primary._objects.pop(other.key)[0])
    _forge(sites, [Rehoming(key, catalogued, other.version_id, sha256_hex(b"forged"))])
    with pytest.raises(RehomedError, match="not the catalog's"):
        sites.reader().get(key, version_id=catalogued)
    with pytest.raises(RehomedError, match="not the catalog's"):
        sites.reader().head(key, version_id=catalogued)
    # With the catalog's SHA-256 in the entry, the bytes served are checked too.
    _forge(sites, [Rehoming(key, catalogued, other.version_id, sites.versions[key][1])])
    with pytest.raises(RehomedError, match="not the catalogued"):
        sites.reader().get(key, version_id=catalogued)


def test_a_segment_outside_the_chain_or_unlocked_refuses_the_map() -> None:
    key = KEYS[1]
    sites = lost_and_repaired()
    catalogued, sha = sites.versions[key]
    restored = sites.primary.latest(key)
    assert restored is not None
    entry = Rehoming(key, catalogued, restored.version_id, sha)
    # Out of chain: segment 2 that does not name segment 1's SHA-256.
    sites.primary.put_locked(
        segment_key(2), encode_segment(2, GENESIS, [entry], written=NOW), retain_until=UNTIL
    )
    with pytest.raises(RehomedError, match="does not chain"):
        sites.reader().get(key, version_id=catalogued)

    sites = lost_and_repaired()
    rmap = read_map(sites.primary)
    data = encode_segment(2, rmap.head, [entry], written=NOW)
    sites.primary.put_locked(segment_key(2), data, retain_until=UNTIL)
    sites.primary._objects[segment_key(2)][0].lock = ObjectLock(None, None, legal_hold=False)
    with pytest.raises(RehomedError, match="COMPLIANCE"):
        sites.reader().get(key, version_id=catalogued)

    sites = lost_and_repaired()  # a gap, a second version, a stranger under the prefix
    sites.primary.put_locked(segment_key(3), b"{}", retain_until=UNTIL)
    with pytest.raises(RehomedError, match="missing"):
        read_map(sites.primary)
    sites = lost_and_repaired()
    first = sites.primary.latest(segment_key(1))
    assert first is not None
    body = json.loads(sites.primary.get(segment_key(1), version_id=first.version_id))
    body["entries"] = body["entries"][:1]
    sites.primary._objects[segment_key(1)].append(
        sites.primary._objects[segment_key(1)][0].__class__(
            "v9", json.dumps(body).encode(), first.lock, NOW
        )
    )
    with pytest.raises(RehomedError, match="2 versions"):
        read_map(sites.primary)
    sites = lost_and_repaired()
    sites.primary.put_locked(f"{REHOMED_PREFIX}notes.txt", b"x", retain_until=UNTIL)
    with pytest.raises(RehomedError, match="not a map segment"):
        read_map(sites.primary)


def test_without_a_map_a_lost_version_stays_missing() -> None:
    store = RehomedStore(MemoryStore(), catalogued=lambda pairs: {})
    with pytest.raises(ObjectNotFoundError):
        store.get(KEYS[0], version_id="v1")
    assert store.latest(KEYS[0]) is None


def test_a_reader_without_the_catalog_refuses_restored_versions() -> None:
    sites = lost_and_repaired()
    key = KEYS[0]
    with pytest.raises(RehomedError, match="no catalog here"):
        RehomedStore(sites.primary).get(key, version_id=sites.versions[key][0])


def test_a_repair_killed_before_its_map_is_completed_by_the_rerun() -> None:
    old, replica = MemoryStore(), MemoryStore()
    both = ReplicatedStore(primary=old, replica=replica)
    versions = {}
    for key in KEYS:
        put = both.put_locked(key, key.encode(), retain_until=UNTIL)
        versions[key] = (put.version_id, put.sha256)
    digests = {k: s for k, (_, s) in versions.items()}
    new = MemoryStore(_ids=itertools.count(500))
    first = repair(replica, new, catalogued=digests)  # killed here: copies made, no map
    assert len(first.copied) == len(KEYS)
    with pytest.raises(ObjectNotFoundError):
        RehomedStore(new, catalogued=lambda p: {}).get(KEYS[0], version_id=versions[KEYS[0]][0])
    rerun = repair(replica, new, catalogued=digests)
    assert rerun.copied == ()
    assert rehome(ReplicatedStore(primary=new, replica=replica), new, versions, rerun) == (5, 1)
    sites = Sites(replica, new, versions)
    assert sites.reader().get(KEYS[0], version_id=versions[KEYS[0]][0]) == KEYS[0].encode()


# -- a broken map stops only what needs it; the map's hold follows its records ---------------
def _break(sites: Sites) -> None:
    """A second segment that does not chain on the first: the whole map is refused."""
    loose = encode_segment(2, GENESIS, [], written=NOW)
    sites.primary.put_locked(segment_key(2), loose, retain_until=UNTIL)


def _segment_held(sites: Sites) -> bool:
    head = sites.primary.latest(segment_key(1))
    assert head is not None
    return head.lock.legal_hold


def test_a_broken_map_refuses_only_what_needs_it() -> None:
    sites = lost_and_repaired()
    written = sites.primary.put_locked(KEYS[0] + "-new", b"never restored", retain_until=UNTIL)
    sites.versions[KEYS[0] + "-new"] = (written.version_id, written.sha256)
    _break(sites)
    store = sites.reader()
    # A record that needs the map is refused, by every path, with the map's reason ...
    catalogued, _ = sites.versions[KEYS[1]]
    for read in (store.get, store.head):
        with pytest.raises(RehomedError, match="does not chain"):
            read(KEYS[1], version_id=catalogued)
    with pytest.raises(RehomedError, match="does not chain"):
        store.set_legal_hold(KEYS[1], version_id=catalogued, on=True)
    with pytest.raises(RehomedError, match="does not chain"):
        list(store.list_versions("records/"))
    # ... a record still at its catalogued version is read, held and extended as before ...
    key = KEYS[0] + "-new"
    assert store.get(key, version_id=written.version_id) == b"never restored"
    store.set_legal_hold(key, version_id=written.version_id, on=True)
    store.extend_retention(key, version_id=written.version_id, retain_until=UNTIL.replace(2060))
    lock = sites.primary.head(key, version_id=written.version_id).lock
    assert (lock.legal_hold, lock.retain_until) == (True, UNTIL.replace(2060))
    # ... and objects the map never names (audit, catalog, evidence) are listed and found.
    assert [v.key for v in store.list_versions("audit/")] == ["audit/sealed/v1/000001"]
    assert store.latest("audit/sealed/v1/000001") is not None


def test_the_map_stays_held_while_any_record_it_maps_is_held() -> None:
    sites = lost_and_repaired()
    store = sites.reader()
    first, second = KEYS[0], KEYS[3]
    for key in (first, second):
        store.set_legal_hold(key, version_id=sites.versions[key][0], on=True)
    assert _segment_held(sites)
    store.set_legal_hold(first, version_id=sites.versions[first][0], on=False)
    assert _segment_held(sites)  # the second record still needs it
    store.set_legal_hold(second, version_id=sites.versions[second][0], on=False)
    assert not _segment_held(sites)  # the last held record released: so is the map
    restored = sites.primary.latest(second)
    assert restored is not None
    assert not restored.lock.legal_hold


def test_releasing_an_unmapped_record_leaves_the_map_held() -> None:
    sites = lost_and_repaired()
    written = sites.primary.put_locked(KEYS[0] + "-new", b"not restored", retain_until=UNTIL)
    store = sites.reader()
    store.set_legal_hold(KEYS[2], version_id=sites.versions[KEYS[2]][0], on=True)
    store.set_legal_hold(KEYS[0] + "-new", version_id=written.version_id, on=True)
    store.set_legal_hold(KEYS[0] + "-new", version_id=written.version_id, on=False)
    assert _segment_held(sites)


# --- the map kept for the process ----------------------------------------------------------------


def _counting_gets(store: MemoryStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The keys under the map's prefix whose bytes are fetched from now on."""
    fetched: list[str] = []
    plain = store.get

    def get(key: str, *, version_id: str) -> bytes:
        if key.startswith(REHOMED_PREFIX):
            fetched.append(key)
        return plain(key, version_id=version_id)

    monkeypatch.setattr(store, "get", get)
    return fetched


def test_the_map_s_bytes_are_read_once_per_process_and_new_segments_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sites = lost_and_repaired()
    key = KEYS[2]
    catalogued, _ = sites.versions[key]
    assert sites.reader().get(key, version_id=catalogued) == b"sealed 2"
    fetched = _counting_gets(sites.primary, monkeypatch)
    for _ in range(3):  # store objects opened later in the same process
        assert sites.reader().get(key, version_id=catalogued) == b"sealed 2"
    assert fetched == []
    # Another repair's segment: read alone, chained on the one verified before.
    restored = sites.primary.latest(KEYS[4])
    assert restored is not None
    _forge(sites, [Rehoming(KEYS[4], "v-other", restored.version_id, sites.versions[KEYS[4]][1])])
    fetched.clear()
    reader = sites.reader()
    indexed = reader.rehomed_map()
    assert fetched == [segment_key(2)]
    assert indexed.entries == read_map(sites.primary).entries
    assert reader.get(key, version_id=catalogued) == b"sealed 2"


def test_a_segment_changed_under_the_index_is_read_again_and_refused() -> None:
    sites = lost_and_repaired()
    key = KEYS[2]
    catalogued, _ = sites.versions[key]
    assert sites.reader().get(key, version_id=catalogued) == b"sealed 2"  # now indexed
    first = sites.primary.latest(segment_key(1))
    assert first is not None
    # Below the S3 API (the lock forbids it above): same key, same version id, other bytes.
    sites.primary.corrupt(segment_key(1), version_id=first.version_id, data=b"{}")
    with pytest.raises(RehomedError, match=r"not a map segment|not a format"):
        sites.reader().get(key, version_id=catalogued)


def test_the_index_still_checks_each_segment_s_lock() -> None:
    sites = lost_and_repaired()
    key = KEYS[2]
    catalogued, _ = sites.versions[key]
    assert sites.reader().get(key, version_id=catalogued) == b"sealed 2"  # now indexed
    sites.primary._objects[segment_key(1)][0].lock = ObjectLock(None, None, legal_hold=False)
    with pytest.raises(RehomedError, match="COMPLIANCE"):
        sites.reader().get(key, version_id=catalogued)

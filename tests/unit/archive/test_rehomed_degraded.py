"""A broken re-homed map stops only what needs it, and the map's legal hold follows its records
(in-memory stores: logic only)."""

from __future__ import annotations

import pytest

from archive.core.errors import RehomedError
from archive.store.rehomed import GENESIS, encode_segment, segment_key
from tests.unit.archive.test_rehomed import KEYS, NOW, UNTIL, Sites, lost_and_repaired


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

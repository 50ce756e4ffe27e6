"""Catalog appends from several machines: each with its own local directory, one bucket, one chain.

The bucket copy's create-once key is the claim: a writer that loses it pulls the winner's manifest
and rebases its rows onto it. (Processes and a real SeaweedFS: tests/integration/archive/
test_catalog_writers.py.)
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from archive.catalog import Catalog
from archive.catalog.naming import manifest_key
from archive.core.errors import CatalogError, ChainBrokenError
from archive.store import PutResult
from tests.support.catalog import NOW, RETAIN, append_run, make_rows
from tests.support.memstore import MemoryStore


class RacingStore(MemoryStore):
    """Lets another writer append just before each of the first ``races`` manifest claims."""

    def __init__(self, rival: Catalog, *, races: int) -> None:
        super().__init__()
        self.rival, self.races, self.rival_runs, self._inside = rival, races, 0, False

    def put_locked(self, key: str, data: bytes, *, retain_until: datetime) -> PutResult:
        if self.races and not self._inside and self.latest(key) is None:
            self.races -= 1
            self.rival_runs += 1
            self._inside = True  # the rival's own claims do not race
            try:
                append_run(self.rival, self, 100 + self.rival_runs)
            finally:
                self._inside = False
        return super().put_locked(key, data, retain_until=retain_until)


def rows_by_run(catalog: Catalog) -> dict[str, int]:
    found: dict[str, int] = {}
    for run_id in catalog.rows().column("run_id").to_pylist():
        found[run_id] = found.get(run_id, 0) + 1
    return found


def test_a_stale_cache_catches_up_before_appending(tmp_path: Path) -> None:
    store = MemoryStore()
    a = Catalog.open(tmp_path / "a", create=True)
    b = Catalog.open(tmp_path / "b", create=True)
    append_run(a, store, 1)
    append_run(b, store, 2)
    append_run(a, store, 3)
    for directory in ("a", "b"):
        synced = Catalog.open(tmp_path / directory)
        synced.sync(store, retain_until=RETAIN)
        assert [m.run_id for m in synced.manifests] == ["run-1", "run-2", "run-3"]
    rebuilt = Catalog.rebuild(tmp_path / "rebuilt", store)
    assert rebuilt.manifests == Catalog.open(tmp_path / "a").manifests


def test_a_lost_claim_is_rebased_onto_the_winner(tmp_path: Path) -> None:
    rival = Catalog.open(tmp_path / "rival", create=True)
    store = RacingStore(rival, races=3)
    ours = Catalog.open(tmp_path / "ours", create=True)
    result = ours.append(
        make_rows(100, 3, "run-1"), run_id="run-1", now=NOW, store=store, retain_until=RETAIN
    )
    assert store.rival_runs == 3
    assert result.created
    assert result.manifest.seq == 4  # after the rival's three
    assert rows_by_run(ours) == {"run-101": 3, "run-102": 3, "run-103": 3, "run-1": 3}
    rebuilt = Catalog.rebuild(tmp_path / "rebuilt", store)
    assert rebuilt.manifests == ours.manifests


def test_rows_another_writer_catalogued_meanwhile_are_refused_whole(tmp_path: Path) -> None:
    store = MemoryStore()
    a = Catalog.open(tmp_path / "a", create=True)
    b = Catalog.open(tmp_path / "b", create=True)
    append_run(a, store, 1)
    with pytest.raises(CatalogError, match="already catalogued"):
        b.append(
            make_rows(101, 3, "run-9"), run_id="run-9", now=NOW, store=store, retain_until=RETAIN
        )
    assert rows_by_run(Catalog.rebuild(tmp_path / "rebuilt", store)) == {"run-1": 3}


def test_a_diverged_cache_is_refused_not_rebased(tmp_path: Path) -> None:
    store = MemoryStore()
    a = Catalog.open(tmp_path / "a", create=True)
    append_run(a, store, 1)
    other = MemoryStore()  # b's manifest 1 went to another bucket: it is not the same chain
    b = Catalog.open(tmp_path / "b", create=True)
    append_run(b, other, 2)
    with pytest.raises(ChainBrokenError):
        append_run(b, store, 3)


# --- what an append lists -------------------------------------------------------------------------
# The twin counts the ListObjectVersions pages S3 would serve; a page of 2 versions here stands for
# S3's 1,000, so seven manifests are the listing cost of 7,000.


def test_a_warm_append_lists_one_page_however_long_the_chain(tmp_path: Path) -> None:
    store = MemoryStore(list_page=2)
    warm = Catalog.open(tmp_path / "warm", create=True)
    for n in range(1, 8):
        append_run(warm, store, n)
    store.list_pages = 0
    append_run(warm, store, 8)
    assert store.list_pages == 1  # from manifest 7 on: 7 and its own claim's absence
    # A fresh cache still lists everything (and downloads it) before it claims.
    store.list_pages = 0
    fresh = Catalog.open(tmp_path / "fresh", create=True)
    append_run(fresh, store, 9)
    assert store.list_pages == 4  # manifests 1-8, two a page
    assert [m.run_id for m in fresh.manifests] == [f"run-{n}" for n in range(1, 10)]


def test_a_warm_cache_behind_lists_only_what_it_lacks_and_pulls_it(tmp_path: Path) -> None:
    store = MemoryStore(list_page=2)
    a = Catalog.open(tmp_path / "a", create=True)
    b = Catalog.open(tmp_path / "b", create=True)
    for n in range(1, 6):
        append_run(a, store, n)
    append_run(b, store, 6)  # b pulls 1-5, claims 6
    append_run(b, store, 7)
    store.list_pages = 0
    append_run(a, store, 8)  # lists 5, 6, 7: two pages, not four
    assert store.list_pages == 2
    assert Catalog.open(tmp_path / "a").manifests[:7] == Catalog.open(tmp_path / "b").manifests
    assert [m.run_id for m in Catalog.open(tmp_path / "a").manifests][-1] == "run-8"


def test_a_gap_after_a_warm_cache_s_newest_is_still_refused(tmp_path: Path) -> None:
    """The short listing checks the sequence it sees as the whole one did: a bucket holding
    manifest n + 2 but not n + 1 is broken, not something to skip over."""
    store = MemoryStore(list_page=2)
    a = Catalog.open(tmp_path / "a", create=True)
    b = Catalog.open(tmp_path / "b", create=True)
    for n in range(1, 4):
        append_run(a, store, n)
    append_run(b, store, 4)
    append_run(b, store, 5)
    lost = store._objects.pop(manifest_key(4))  # only a broken store loses a locked copy
    assert lost
    with pytest.raises(ChainBrokenError, match=r"0000000004\.parquet is missing"):
        append_run(a, store, 6)
    assert len(Catalog.open(tmp_path / "a").manifests) == 3


def test_a_whole_sync_still_finds_a_gap_below_the_newest(tmp_path: Path) -> None:
    """``catalog verify`` syncs ``whole``: a bucket copy gone from the middle of the chain is
    refused (the warm append, listing from the newest on, does not look there)."""
    store = MemoryStore()
    a = Catalog.open(tmp_path / "a", create=True)
    for n in range(1, 4):
        append_run(a, store, n)
    store._objects.pop(manifest_key(2))  # only a broken store loses a locked copy
    append_run(a, store, 4)
    with pytest.raises(ChainBrokenError, match=r"0000000002\.parquet is missing"):
        a.sync(store, retain_until=RETAIN, whole=True)

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

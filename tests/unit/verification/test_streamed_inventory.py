"""The archive-wide comparisons through the on-disk catalog index find what the in-memory ones
found (the code before it, kept here as the oracle), in the same order: a catalog with renewed
keys, disposed rows, and a bucket listing with missing versions, orphans, newer versions over
catalogued keys, delete markers and objects outside records/; every selection mode, with the
re-homed map refused or not."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable
from datetime import date, timedelta

import pytest

from archive.catalog import Catalog, CatalogRow
from archive.store import RECORDS_PREFIX, ObjectVersion
from tests.support.catalog import NOW, RETAIN, make_rows
from tests.support.memstore import MemoryStore
from verification.catalog_index import CatalogIndex, Newest
from verification.inventory import Finding, _inventory_result, _unmapped, compare_inventory
from verification.select import Mode, Selection, catalog_rows, marked, select

TZ = "Asia/Ho_Chi_Minh"
RUNS = ("20250201T190000Z-nightly", "20250202T230000Z-rerun", "run-undated")


def renewed(row: CatalogRow, run_id: str) -> CatalogRow:
    """A later version of the same key (an evidence renewal writes one)."""
    return dataclasses.replace(
        row,
        version_id=f"{row.version_id}-renewed",
        sealed_sha256="f" * 64,
        retain_until=row.retain_until + timedelta(days=400),
        run_id=run_id,
    )


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    directory = tmp_path_factory.mktemp("streamed") / "c"
    catalog, store = Catalog.open(directory, create=True), MemoryStore()
    earlier: list[CatalogRow] = []
    for n, run_id in enumerate(RUNS, start=1):
        rows = [
            dataclasses.replace(r, object_key=RECORDS_PREFIX + r.object_key[len("records/") :])
            for r in make_rows(100 * n, 30 + 7 * n, run_id)
        ]
        rows += [renewed(r, run_id) for r in earlier[::4]]
        catalog.append(
            rows, run_id=run_id, now=NOW + timedelta(days=n), store=store, retain_until=RETAIN
        )
        earlier = [r for r in rows if not r.version_id.endswith("renewed")]
    return Catalog.open(directory)


def listing(rows: list[CatalogRow], seed: int) -> list[ObjectVersion]:
    """What the bucket lists: most catalogued versions, and every kind of difference."""
    rng = random.Random(seed)
    out: list[ObjectVersion] = []
    for r in rows:
        if rng.random() < 0.1:
            continue  # missing
        out.append(ObjectVersion(r.object_key, r.version_id, 1, True, False, NOW))
        if rng.random() < 0.05:  # a version no row names, over a catalogued key
            out.append(ObjectVersion(r.object_key, f"x{rng.random()}", 1, True, False, NOW))
        if rng.random() < 0.05:
            out.append(ObjectVersion(r.object_key, f"dm{rng.random()}", 0, True, True, NOW))
    for i in range(8):
        out.append(ObjectVersion(f"{RECORDS_PREFIX}orphan-{i}", f"o{i}", 1, True, False, NOW))
        out.append(ObjectVersion(f"{RECORDS_PREFIX}gone-{i}", f"g{i}", 0, True, True, NOW))
        out.append(ObjectVersion(f"quarantine/v1/{i}", f"q{i}", 1, True, False, NOW))
    rng.shuffle(out)  # the comparison must not depend on the listing's order
    return out


def old_inventory(
    catalogued: Iterable[tuple[str, str]],
    versions: Iterable[ObjectVersion],
    *,
    verified: set[tuple[str, str]],
    map_refused: bool,
) -> tuple[list[Finding], int]:
    """verification.inventory.inventory before the index (session 6), findings and count."""
    wanted = set(catalogued)
    keys = {k for k, _ in wanted}
    found: list[Finding] = []
    present: set[tuple[str, str]] = set()
    for v in versions:
        if not v.key.startswith(RECORDS_PREFIX):
            continue
        pair = (v.key, v.version_id)
        if v.is_delete_marker and v.key in keys:
            found.append(
                Finding(
                    "inventory.delete_marker", *pair, "a delete marker hides a catalogued record"
                )
            )
        elif not v.is_delete_marker and pair not in wanted:
            code, what = (
                ("inventory.newer_version", "a version no catalog row names, over a catalogued key")
                if v.key in keys
                else ("inventory.orphan", "an object no catalog row names")
            )
            found.append(Finding(code, *pair, what))
        present.add(pair)
    for pair in sorted(wanted - present - verified):
        found.append(
            Finding("inventory.missing", *pair, "a catalogued version is not in the bucket")
        )
    if map_refused:
        found = _unmapped(found, {k for k, v in wanted - present})
    return found, len(wanted)


def old_newest(rows: list[CatalogRow]) -> list[Newest]:
    """verification.replica.compare_sites before the index: a key's newest row wins."""
    records = {r.object_key: r for r in rows}
    return [
        Newest(r.object_key, r.sealed_sha256, r.retain_until, r.encounter_id)
        for r in records.values()
    ]


SELECTIONS = [
    Selection(mode=Mode.FULL),
    Selection(mode=Mode.SINCE, since=date(2025, 2, 13)),
    Selection(mode=Mode.SAMPLE, share=0.2, seed=11),
    Selection(mode=Mode.SAMPLE, share=0.05, seed=3),
]


@pytest.mark.parametrize("selection", SELECTIONS, ids=lambda s: s.describe())
@pytest.mark.parametrize("map_refused", [False, True], ids=["map", "map-refused"])
@pytest.mark.parametrize("seed", [1, 2])
def test_the_index_finds_what_the_in_memory_comparison_found(
    catalog: Catalog, selection: Selection, map_refused: bool, seed: int
) -> None:
    every = catalog_rows(catalog.rows())
    disposed = frozenset((r.object_key, r.version_id) for r in every[5::17])
    rows = [r for r in every if (r.object_key, r.version_id) not in disposed]
    versions = listing(rows, seed)
    chosen = select(rows, selection, tz=TZ)
    expected, count = old_inventory(
        [(r.object_key, r.version_id) for r in rows],
        versions,
        verified={(r.object_key, r.version_id) for r in chosen},
        map_refused=map_refused,
    )
    codes = {f.reason_code for f in expected}  # the listing differs in every way it can
    assert {"inventory.orphan", "inventory.delete_marker"} <= codes
    assert codes & {"inventory.newer_version", "rehomed.broken"}
    assert "inventory.missing" in codes or selection.mode is Mode.FULL or map_refused

    with CatalogIndex(newest=True) as index:
        for table, picked in marked(catalog, selection, tz=TZ, disposed=disposed, batch_rows=9):
            index.add(table, picked)
        index.add_listing(versions)
        result, found = compare_inventory(index, map_refused=map_refused)
        assert list(found) == expected
        assert result == _inventory_result(expected, count)
        assert index.picked == len(chosen)
        assert index.rows == len(rows)
        assert index.pair_count() == count
        assert list(index.newest()) == old_newest(rows)


def test_a_clean_bucket_passes_and_counts_distinct_pairs(catalog: Catalog) -> None:
    rows = catalog_rows(catalog.rows())
    versions = [ObjectVersion(r.object_key, r.version_id, 1, True, False, NOW) for r in rows]
    with CatalogIndex() as index:
        for table, picked in marked(catalog, Selection(mode=Mode.FULL), tz=TZ):
            index.add(table, picked)
        index.add_listing(versions)
        result, found = compare_inventory(index)
    assert found == ()
    assert result.message.startswith(f"{len(rows)} catalogued version(s)")

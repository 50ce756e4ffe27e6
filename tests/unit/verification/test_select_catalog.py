"""The selection read straight from the catalog picks what the in-memory selection picks, in the
same order: full, since a day, and stratified samples (dated and undated run ids, disposed rows)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from archive.catalog import Catalog, CatalogRow
from tests.support.catalog import NOW, RETAIN, make_rows
from tests.support.memstore import MemoryStore
from verification.select import Mode, Selection, catalog_rows, select, selected

TZ = "Asia/Ho_Chi_Minh"
RUNS = ("20250201T190000Z-nightly", "20250201T230000Z-rerun", "run-undated", "20250203T190000Z-n")


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    directory = tmp_path_factory.mktemp("select") / "c"
    catalog, store = Catalog.open(directory, create=True), MemoryStore()
    for n, run_id in enumerate(RUNS, start=1):
        catalog.append(
            make_rows(100 * n, 4 + 3 * n, run_id),  # rows whose signing times span several days
            run_id=run_id,
            now=NOW + timedelta(days=n),
            store=store,
            retain_until=RETAIN,
        )
    return Catalog.open(directory)


def flat(
    catalog: Catalog, selection: Selection, disposed: frozenset[tuple[str, str]] = frozenset()
) -> list[CatalogRow]:
    batches = selected(catalog, selection, tz=TZ, disposed=disposed, batch_rows=4)
    return [r for batch in batches for r in batch]


SELECTIONS = [
    Selection(mode=Mode.FULL),
    Selection(mode=Mode.SINCE, since=date(2025, 2, 2)),
    Selection(mode=Mode.SINCE, since=date(2031, 1, 1)),
    *(Selection(mode=Mode.SAMPLE, share=s, seed=seed) for s in (0.1, 0.5) for seed in (1, 7)),
]


@pytest.mark.parametrize("selection", SELECTIONS, ids=lambda s: s.describe())
def test_same_rows_in_the_same_order_as_the_in_memory_selection(
    catalog: Catalog, selection: Selection
) -> None:
    rows = catalog_rows(catalog.rows())
    assert flat(catalog, selection) == select(rows, selection, tz=TZ)


def test_disposed_rows_are_left_out_before_the_draw(catalog: Catalog) -> None:
    rows = catalog_rows(catalog.rows())
    disposed = frozenset((r.object_key, r.version_id) for r in rows[::3])
    kept = [r for r in rows if (r.object_key, r.version_id) not in disposed]
    for selection in SELECTIONS:
        expected = select(kept, selection, tz=TZ)
        assert flat(catalog, selection, disposed=disposed) == expected
        assert not disposed & {(r.object_key, r.version_id) for r in expected}

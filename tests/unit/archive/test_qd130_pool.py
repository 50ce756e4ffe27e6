"""The QĐ 130 collector on a process pool yields what it yields in-process, in the same order,
and never runs more than a bounded number of pass-2 tasks ahead of its caller."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from itertools import islice
from pathlib import Path
from typing import Any

import pytest

from archive.core.pool import InProcess
from archive.sources import EncounterBundle, QuarantineEntry, Window
from archive.sources.qd130 import collect, load_facility_trust
from archive.sources.qd130.build import Place
from archive.sources.qd130.collect import DEFAULT_LIMITS, TASKS_IN_FLIGHT, _built, discover
from archive.sources.qd130.index import index_file
from infra.sample.qd130 import write_qd130_export
from infra.sample.qd130_signing import CERT_FILE, dev_facility

DAY = date(2025, 3, 10)
TZ = "Asia/Ho_Chi_Minh"
WINDOW = Window.for_day(DAY, TZ)


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("qd130-pool")
    facility = dev_facility(root / "facility")
    write_qd130_export(
        root / "day", encounters=150, seed=7, day=DAY, tz=TZ, bad=True, facility=facility
    )
    return root


def _key(item: Any) -> tuple[Any, ...]:
    if isinstance(item, EncounterBundle):
        return ("bundle", item.encounter_id, item.canonical, item.bundle, item.facility_signature)
    assert isinstance(item, QuarantineEntry)
    return ("entry", item)


def test_a_pool_yields_the_same_items_in_the_same_order(day: Path) -> None:
    trust = load_facility_trust(day / "facility" / CERT_FILE)
    alone = list(collect(day / "day", window=WINDOW, trust=trust))
    pooled = list(collect(day / "day", window=WINDOW, trust=trust, workers=2, pool_min_bytes=0))
    assert [_key(i) for i in pooled] == [_key(i) for i in alone]
    kinds = {(type(i).__name__, getattr(i, "reason", None)) for i in alone}
    assert len(kinds) > 8  # bundles and every planted refusal, the bad signature among them
    bundles = [i for i in alone if isinstance(i, EncounterBundle)]
    assert {b.facility_signature.status for b in bundles if b.facility_signature} == {
        "valid",
        "absent",
    }
    assert all(b.facility_signature for b in bundles)


class _Counting(InProcess):
    """Runs each task when it is submitted (as :class:`InProcess` does) and counts them."""

    def __init__(self) -> None:
        super().__init__(lambda: None, ())
        self.tasks = 0

    def map(self, fn: Callable[..., Any], *iterables: Any, **kw: Any) -> Iterator[Any]:
        results = list(super().map(fn, *iterables, **kw))
        self.tasks += len(results)
        return iter(results)


def test_pass_2_runs_at_most_two_groups_of_tasks_ahead(day: Path) -> None:
    index: dict[str, list[Place]] = {}
    for found in map(
        lambda p: index_file(p, WINDOW, DEFAULT_LIMITS, load_facility_trust(None)),
        discover(day / "day"),
    ):
        for f in found.found:
            assert found.signature is not None
            place = Place(
                found.path, f.ordinal, f.start, f.end_tag, f.facility, False, found.signature
            )
            index.setdefault(f.key, []).append(place)
    tasks = [[(k, index[k])] for k in sorted(index)]  # one episode a task
    assert len(tasks) > 4 * TASKS_IN_FLIGHT
    pool = _Counting()
    items = _built(pool, 1, iter(tasks), WINDOW, DEFAULT_LIMITS)
    assert list(islice(items, 1))
    assert pool.tasks == 2 * TASKS_IN_FLIGHT  # the first group, and the next one prepared
    assert len(list(items)) >= len(tasks) - 1
    assert pool.tasks == len(tasks)

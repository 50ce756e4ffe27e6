"""The look-up's longest catalogued lock of each encounter: the version locked longest, whatever
its order, read from the manifests the index names (an amendment is never locked shorter)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from archive.catalog import Catalog
from archive.catalog.lookup import EncounterLookup
from tests.support.catalog import NOW, RETAIN, make_row
from tests.support.memstore import MemoryStore

DEATH = datetime(2056, 12, 31, 17, tzinfo=UTC)


def test_the_longest_lock_of_any_version_is_given_with_its_class(tmp_path: Path) -> None:
    catalog, store = Catalog.open(tmp_path / "c", create=True), MemoryStore()
    first, other = make_row(1, "run-1"), make_row(2, "run-1")
    # Run 1: the first version under a death class; run 2: its correction, a shorter class.
    runs = [
        [replace(first, retention_class="death", retain_until=DEATH), other],
        [
            replace(
                first,
                run_id="run-2",
                object_key="k2",
                data_sha256="ab" * 32,
                signed_at=first.signed_at + timedelta(days=1),
            )
        ],
    ]
    for n, rows in enumerate(runs, 1):
        catalog.append(
            rows, run_id=f"run-{n}", now=NOW + timedelta(days=n), store=store, retain_until=RETAIN
        )
    with EncounterLookup.open(Catalog.open(tmp_path / "c")) as lookup:
        found = lookup.longest_locks([first.encounter_id, other.encounter_id, "enc-unknown"])
        assert found == {
            first.encounter_id: ("death", DEATH),
            other.encounter_id: (other.retention_class, other.retain_until),
        }
        # the versions still read as before, oldest signature first
        assert lookup.data_versions([first.encounter_id]) == {
            first.encounter_id: [first.data_sha256, "ab" * 32]
        }

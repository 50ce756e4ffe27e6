"""Reading a large catalog: batches with projection and pushdown, and the encounter look-up index,
which is a rebuildable cache that a tampered copy must not lead astray."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from archive.catalog import Catalog, reader
from archive.catalog.digests import catalogued_digests
from archive.catalog.lookup import LOOKUP_FILE, EncounterLookup
from tests.support.catalog import NOW, RETAIN, make_row, make_rows
from tests.support.memstore import MemoryStore


def build(directory: Path) -> Catalog:
    """Four runs; enc-000101 is amended in run 3 and again in run 4 (new data each time)."""
    catalog, store = Catalog.open(directory, create=True), MemoryStore()
    for n in range(1, 5):
        rows = make_rows(100 * n, 3, f"run-{n}")
        if n >= 3:
            again = make_row(101, f"run-{n}")
            rows.append(
                replace(
                    again,
                    object_key=f"{again.object_key}-{n}",
                    data_sha256=f"{n:064x}",
                    signed_at=again.signed_at + timedelta(days=n),
                )
            )
        catalog.append(
            rows, run_id=f"run-{n}", now=NOW + timedelta(days=n), store=store, retain_until=RETAIN
        )
    return Catalog.open(directory)


def sql(catalog: Catalog, statement: str, *args: object) -> None:
    db = sqlite3.connect(catalog.directory / LOOKUP_FILE)
    with db:
        db.execute(statement, args)
    db.close()


IDS = ["enc-000100", "enc-000101", "enc-000302", "enc-000402", "enc-999999"]


# --- batches -------------------------------------------------------------------------------------


def test_batches_give_the_whole_table_path_s_rows_in_its_order(tmp_path: Path) -> None:
    catalog = build(tmp_path / "c")
    streamed = pa.concat_tables(list(reader.batches(catalog, batch_rows=2)))
    assert streamed.equals(catalog.rows())
    assert reader.count(catalog) == catalog.rows().num_rows == 14


def test_batches_project_and_filter_like_the_whole_table(tmp_path: Path) -> None:
    catalog = build(tmp_path / "c")
    where = pc.field("encounter_id").isin(IDS)
    got = pa.concat_tables(list(reader.batches(catalog, columns=["encounter_id"], where=where)))
    assert got.column(0).to_pylist() == catalog.rows().filter(where).column(0).to_pylist()
    assert reader.distinct(catalog, "signer_cert_sha256") == catalog.signer_fingerprints()
    assert catalog.signer_fingerprints() == set(catalog.rows()["signer_cert_sha256"].to_pylist())
    assert reader.count(catalog, where=where) == 6


# --- the look-up index ---------------------------------------------------------------------------


def test_lookup_answers_as_the_catalog_does(tmp_path: Path) -> None:
    catalog = build(tmp_path / "c")
    with EncounterLookup.open(catalog) as lookup:
        assert lookup.data_versions(IDS) == catalog.data_versions(IDS)
        assert lookup.data_versions(IDS)["enc-000101"][-1] == f"{4:064x}"  # newest last
        assert [i in lookup for i in IDS] == [i in catalog.encounter_ids() for i in IDS]
        assert lookup.data_versions([]) == {}


def test_lookup_takes_new_manifests_incrementally_and_restarts_for_another_chain(
    tmp_path: Path,
) -> None:
    catalog = build(tmp_path / "c")
    EncounterLookup.open(catalog).close()
    catalog.append(
        make_rows(900, 2, "run-9"),
        run_id="run-9",
        now=NOW + timedelta(days=9),
        store=MemoryStore(),
        retain_until=RETAIN,
    )
    with EncounterLookup.open(catalog) as lookup:
        assert not lookup.rebuilt
        assert "enc-000901" in lookup
    other = build(tmp_path / "other")  # same rows, other created-at: other manifest hashes
    other_path = other.directory / LOOKUP_FILE
    other_path.write_bytes((catalog.directory / LOOKUP_FILE).read_bytes())
    with EncounterLookup.open(other) as lookup:
        assert lookup.rebuilt
        assert "enc-000901" not in lookup
        assert lookup.data_versions(IDS) == other.data_versions(IDS)


def test_deleted_entries_are_noticed_and_rebuilt(tmp_path: Path) -> None:
    catalog = build(tmp_path / "c")
    EncounterLookup.open(catalog).close()
    sql(catalog, "DELETE FROM entries WHERE encounter_id = ?", "enc-000101")
    with EncounterLookup.open(catalog) as lookup:
        assert "enc-000101" in lookup
        assert lookup.data_versions(IDS) == catalog.data_versions(IDS)


def test_an_entry_moved_to_another_manifest_does_not_change_the_answer(tmp_path: Path) -> None:
    catalog = build(tmp_path / "c")
    EncounterLookup.open(catalog).close()
    # Consistent with itself (counts unchanged): only the manifests can tell.
    sql(catalog, "UPDATE entries SET seq = 2 WHERE encounter_id = ? AND seq = 4", "enc-000101")
    with EncounterLookup.open(catalog) as lookup:
        before = lookup.rebuilt
        answer = lookup.data_versions(IDS)
        assert (before, lookup.rebuilt) == (False, True)  # the manifests disagreed: rebuilt
        assert answer == catalog.data_versions(IDS)
    # Moved onto a manifest that holds the id too, it would hide the newest version: refused.
    with pytest.raises(sqlite3.IntegrityError):
        sql(catalog, "UPDATE entries SET seq = 1 WHERE encounter_id = ? AND seq = 4", "enc-000101")


def test_a_planted_entry_and_count_do_not_invent_a_record(tmp_path: Path) -> None:
    catalog = build(tmp_path / "c")
    EncounterLookup.open(catalog).close()
    sql(catalog, "INSERT INTO entries VALUES ('enc-999999', 2)")
    sql(catalog, "UPDATE manifests SET entries = entries + 1 WHERE seq = 2")
    with EncounterLookup.open(catalog) as lookup:
        assert lookup.data_versions(["enc-999999", "enc-000100"]) == catalog.data_versions(
            ["enc-999999", "enc-000100"]
        )
        assert "enc-999999" not in lookup  # rebuilt from the manifests


def test_a_garbled_index_file_is_replaced(tmp_path: Path) -> None:
    catalog = build(tmp_path / "c")
    (catalog.directory / LOOKUP_FILE).write_bytes(b"not a database at all" * 100)
    with EncounterLookup.open(catalog) as lookup:
        assert lookup.data_versions(IDS) == catalog.data_versions(IDS)
    assert (catalog.directory / LOOKUP_FILE).stat().st_mode & 0o777 == 0o600


def test_catalogued_digests_read_only_the_wanted_rows_and_answer_as_the_whole_table(
    tmp_path: Path,
) -> None:
    catalog = build(tmp_path / "c")
    rows = catalog.rows().to_pylist()
    every = {(r["object_key"], r["version_id"]): r["sealed_sha256"] for r in rows}
    amended = [p for p in every if p[0] == make_row(101, "x").object_key]
    wanted = [*amended, next(iter(every)), ("records/none", "v1"), (amended[0][0], "v-other")]
    got = catalogued_digests(catalog.directory)(wanted)
    assert got == {p: every[p] for p in wanted if p in every}
    assert len(got) == len(amended) + 1

"""An export reads the catalog rows behind its index hits through the catalog's look-up index
(a few manifests, not a scan of all): same rows as the scan, and a tampered look-up never makes
it hand out another record's row."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from archive.catalog import Catalog
from archive.catalog.lookup import LOOKUP_FILE, EncounterLookup
from archive.core.errors import ArchiveError
from retrieval.service.export import catalogued_rows
from tests.support.catalog import NOW, RETAIN, make_row, make_rows
from tests.support.memstore import MemoryStore

AMENDED = "enc-000101"


def build(directory: Path) -> Catalog:
    """Four runs; enc-000101 is amended in runs 3 and 4 (a new version of its object each)."""
    catalog, store = Catalog.open(directory, create=True), MemoryStore()
    for n in range(1, 5):
        rows = make_rows(100 * n, 3, f"run-{n}")
        if n >= 3:
            again = make_row(101, f"run-{n}")
            rows.append(
                replace(
                    again,
                    version_id=f"v101-{n}",
                    data_sha256=f"{n:064x}",
                    signed_at=again.signed_at + timedelta(days=n),
                )
            )
        catalog.append(
            rows, run_id=f"run-{n}", now=NOW + timedelta(days=n), store=store, retain_until=RETAIN
        )
    return Catalog.open(directory)


def hits(catalog: Catalog, *encounter_ids: str) -> list[dict[str, Any]]:
    """What the search index hands the export: pointers (id, key, version) to catalog rows."""
    table = catalog.rows().to_pylist()
    keep = ("encounter_id", "object_key", "version_id")
    return [{k: r[k] for k in keep} for r in table if r["encounter_id"] in encounter_ids]


def scanned(catalog: Catalog, indexed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The verified path every export took before: a scan of every manifest per hit."""
    out = []
    for hit in indexed:
        for row in catalog.find(encounter_id=hit["encounter_id"]).to_pylist():
            if (row["object_key"], row["version_id"]) == (hit["object_key"], hit["version_id"]):
                out.append(row)
    return out


def sql(catalog: Catalog, statement: str, *args: object) -> None:
    db = sqlite3.connect(catalog.directory / LOOKUP_FILE)
    with db:
        db.execute(statement, args)
    db.close()


def test_rows_through_the_lookup_equal_the_scan_s_amended_versions_included(
    tmp_path: Path,
) -> None:
    catalog = build(tmp_path / "c")
    indexed = hits(catalog, AMENDED, "enc-000100", "enc-000402")
    assert len(indexed) == 5  # three versions of the amended record
    got = catalogued_rows(catalog, indexed)
    assert got == scanned(catalog, indexed)
    assert [r["data_sha256"] for r in got if r["encounter_id"] == AMENDED][1:] == [
        f"{3:064x}",
        f"{4:064x}",
    ]
    with EncounterLookup.open(catalog) as lookup:  # it was the look-up that answered
        assert lookup.rows(AMENDED) == catalog.find(encounter_id=AMENDED).to_pylist()
        assert not lookup.rebuilt


def test_an_id_rewritten_in_the_lookup_falls_back_to_the_scan(tmp_path: Path) -> None:
    catalog = build(tmp_path / "c")
    EncounterLookup.open(catalog).close()
    # Consistent with itself (counts unchanged): the look-up now hides enc-000300 entirely.
    sql(catalog, "UPDATE entries SET encounter_id = 'enc-777777' WHERE encounter_id = 'enc-000300'")
    indexed = hits(catalog, "enc-000300")
    assert catalogued_rows(catalog, indexed) == scanned(catalog, indexed)


def test_an_id_rewritten_to_another_record_s_never_returns_that_record(tmp_path: Path) -> None:
    catalog = build(tmp_path / "c")
    EncounterLookup.open(catalog).close()
    # enc-000300's entry renamed to enc-000400: the look-up names manifest 3 for enc-000400.
    sql(catalog, "UPDATE entries SET encounter_id = 'enc-000400' WHERE encounter_id = 'enc-000300'")
    for eid in ("enc-000400", "enc-000300"):
        indexed = hits(catalog, eid)
        got = catalogued_rows(catalog, indexed)
        assert got == scanned(catalog, indexed)
        assert {r["encounter_id"] for r in got} == {eid}


def test_a_hit_the_catalog_does_not_hold_is_refused(tmp_path: Path) -> None:
    catalog = build(tmp_path / "c")
    forged = {**hits(catalog, "enc-000100")[0], "version_id": "v-planted"}
    with pytest.raises(ArchiveError, match="indexed but not catalogued"):
        catalogued_rows(catalog, [forged])


def test_a_lookup_that_cannot_be_opened_leaves_the_scan(tmp_path: Path) -> None:
    catalog = build(tmp_path / "c")
    (catalog.directory / LOOKUP_FILE).unlink(missing_ok=True)
    (catalog.directory / LOOKUP_FILE).mkdir()  # (as root, a read-only directory would not do)
    indexed = hits(catalog, AMENDED)
    assert catalogued_rows(catalog, indexed) == scanned(catalog, indexed)

"""The search index is a cache of the catalog: edited, planted or deleted rows, or an index made
under another key, never change what a search answers."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from archive.catalog import Catalog
from archive.seal import LocalKeyring
from bench.bench_search import generate_catalog
from retrieval.index import SearchIndex
from retrieval.index_seal import index_key
from tests.support.memstore import MemoryStore

ENC = "ENC000000007"
EARLY, LATE = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Catalog, SearchIndex, bytes, list[dict[str, Any]]]]:
    keyring = LocalKeyring.create(tmp_path / "keys", kek_id="emr-archive-kek")
    catalog, _ = generate_catalog(tmp_path / "c", rows=60, keyring=keyring, store=MemoryStore())
    key = index_key(keyring.chain_key())
    index = SearchIndex.open(tmp_path / "index", seal_key=key)
    index.sync(catalog)
    truth = index.by_encounter(ENC)
    assert len(truth) == 1
    yield catalog, index, key, truth
    index.close()


def sql(index: SearchIndex, statement: str, *args: object) -> None:
    db = sqlite3.connect(index.path)
    with db:
        db.execute(statement, args)
    db.close()


def test_an_edited_row_is_not_believed(world: Any) -> None:
    _, index, _, truth = world
    sql(
        index, "UPDATE records SET facility = '99999', retain_until = 0 WHERE encounter_id = ?", ENC
    )
    # Returned by a search, the edited row fails its seal: the index is rebuilt, then answers.
    assert index.by_facility("99999", start=EARLY, end=LATE, limit=99) == []
    assert index.by_encounter(ENC) == truth


def test_an_edited_value_is_caught_by_the_search_that_returns_it(world: Any) -> None:
    _, index, _, truth = world
    sql(index, "UPDATE records SET retain_until = 0, run_id = 'x' WHERE encounter_id = ?", ENC)
    assert index.by_encounter(ENC) == truth


def test_a_planted_row_is_not_believed(world: Any) -> None:
    _, index, _, truth = world
    sql(
        index,
        "INSERT INTO records SELECT seq, 'ENC-PLANTED', patient_pseudonym, facility, admitted_at,"
        " discharged_at, retention_class, retain_until, object_key, version_id, pdf_sha256,"
        " signed_at, run_id, mac FROM records WHERE encounter_id = ?",
        ENC,
    )
    assert index.by_encounter("ENC-PLANTED") == []
    assert index.by_encounter(ENC) == truth


def test_a_deleted_row_comes_back_at_the_next_sync(world: Any) -> None:
    catalog, index, _, truth = world
    sql(index, "DELETE FROM records WHERE encounter_id = ?", ENC)
    index.sync(catalog)
    assert index.by_encounter(ENC) == truth
    assert index.count() == 60


def test_an_index_made_under_another_key_is_rebuilt(world: Any, tmp_path: Path) -> None:
    catalog, _index, key, truth = world
    forged = SearchIndex.open(tmp_path / "forged", seal_key=b"k" * 32)
    forged.sync(catalog)
    sql(forged, "UPDATE records SET run_id = 'forged' WHERE encounter_id = ?", ENC)
    forged.close()
    mine = SearchIndex(tmp_path / "forged" / "search.sqlite", seal_key=key)
    mine.sync(catalog)
    assert mine.by_encounter(ENC) == truth
    mine.close()


def test_an_index_from_before_the_seal_is_dropped(tmp_path: Path, world: Any) -> None:
    catalog, _, key, truth = world
    old = tmp_path / "old" / "search.sqlite"
    old.parent.mkdir()
    db = sqlite3.connect(old)
    db.execute("CREATE TABLE records (seq INTEGER, encounter_id TEXT)")  # the unsealed layout
    db.execute("INSERT INTO records VALUES (1, 'stale')")
    db.commit()
    db.close()
    index = SearchIndex(old, seal_key=key)
    index.sync(catalog)
    assert index.count() == 60
    assert index.by_encounter(ENC) == truth
    index.close()


def test_the_index_and_its_wal_files_are_private(world: Any) -> None:
    _, index, _, _ = world
    files = sorted(index.path.parent.iterdir())
    assert {f.name for f in files} >= {"search.sqlite", "search.sqlite-wal", "search.sqlite-shm"}
    assert {f.name: f.stat().st_mode & 0o777 for f in files} == {f.name: 0o600 for f in files}


# --- the last verification outcomes --------------------------------------------------------------

OTHER = "ENC000000008"


def verification_log(directory: Path) -> Path:
    """Two runs of the verification log: ENC passed, then failed; OTHER never verified."""
    directory.mkdir()
    for n, status in ((1, "passed"), (2, "failed")):
        table = pa.table(
            {
                "encounter_id": [ENC],
                "verified_at": pa.array(
                    [datetime(2025, 3, n, tzinfo=UTC)], pa.timestamp("us", "UTC")
                ),
                "status": [status],
                "reason_code": ["" if status == "passed" else "object.hash_mismatch"],
                "run_id": [f"verify-{n}"],
            }
        )
        pq.write_table(table, directory / f"run-{n}.parquet")
    return directory


def test_an_edited_verification_outcome_is_not_believed(world: Any, tmp_path: Path) -> None:
    _, index, _, _ = world
    index.sync_verification(verification_log(tmp_path / "log"))
    truth = index.last_verification([ENC])
    assert truth[ENC].status == "failed"
    sql(
        index,
        "UPDATE verification SET status = 'passed', reason_code = '' WHERE encounter_id = ?",
        ENC,
    )
    # The edited row fails its seal: the log is folded again, then the index answers.
    assert index.last_verification([ENC]) == truth


def test_a_planted_verification_outcome_is_not_believed(world: Any, tmp_path: Path) -> None:
    _, index, _, _ = world
    index.sync_verification(verification_log(tmp_path / "log"))
    truth = index.last_verification([ENC, OTHER])
    assert list(truth) == [ENC]
    sql(
        index,
        "INSERT INTO verification SELECT ?, verified_at, 'passed', '', run_id, mac "
        "FROM verification WHERE encounter_id = ?",
        OTHER,
        ENC,
    )
    assert index.last_verification([ENC, OTHER]) == truth


def test_an_index_of_layout_2_refolds_its_unsealed_outcomes_and_keeps_its_rows(
    world: Any, tmp_path: Path
) -> None:
    catalog, index, key, truth = world
    log = verification_log(tmp_path / "log")
    index.sync_verification(log)
    outcome = index.last_verification([ENC])
    index.close()
    sql(index, "DROP TABLE verification")  # as layout 2 had it: no seal, and edited
    sql(
        index,
        "CREATE TABLE verification (encounter_id TEXT PRIMARY KEY, verified_at INTEGER, "
        "status TEXT, reason_code TEXT, run_id TEXT)",
    )
    sql(index, "INSERT INTO verification VALUES (?, 0, 'passed', '', 'x')", ENC)
    sql(index, "PRAGMA user_version=2")
    reopened = SearchIndex(index.path, seal_key=key)
    assert reopened.sync(catalog) == 0  # the sealed rows stayed: nothing to ingest again
    assert reopened.by_encounter(ENC) == truth
    reopened.sync_verification(log)
    assert reopened.last_verification([ENC]) == outcome
    reopened.close()

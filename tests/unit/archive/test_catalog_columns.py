"""Columns added to the catalog: manifests written before them still open, verify and read.

``tests/support/catalog_v1`` is a catalog written by the code before ``source_kind`` and
``episode_key`` existed (two runs, by :func:`tests.support.catalog.append_run`); its bytes are
locked in the hash chain, so it must be read as it is, never rewritten.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from archive.catalog import MANIFESTS_DIR, SCHEMA, Catalog, decode_header, table_to_rows
from archive.catalog.schema import SCHEMA_V1
from archive.core.errors import ManifestCorruptError
from tests.support.catalog import NOW, RETAIN, make_rows
from tests.support.memstore import MemoryStore

V1 = Path(__file__).parents[2] / "support" / "catalog_v1"


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    target = tmp_path / "catalog"
    shutil.copytree(V1, target)
    return target


def _manifest_bytes(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((directory / MANIFESTS_DIR).iterdir())}


def test_the_fixture_really_has_the_old_columns() -> None:
    data = (V1 / MANIFESTS_DIR / "0000000001.parquet").read_bytes()
    decode_header(data, name="v1")  # accepted as a known column set

    assert pq.read_schema(pa.BufferReader(data)).equals(SCHEMA_V1)
    assert "source_kind" not in SCHEMA_V1.names


def test_an_old_catalog_opens_verifies_and_reads_as_fhir(legacy: Path) -> None:
    catalog = Catalog.open(legacy)  # hashes every manifest and checks the chain
    table = catalog.rows()
    assert table.schema.equals(SCHEMA)
    assert table.column("source_kind").to_pylist() == ["fhir"] * 5
    for added in ("episode_key", "facility_signature", "facility_signer_sha256"):
        assert table.column(added).to_pylist() == [None] * 5
    assert table_to_rows(table) == make_rows(100, 3, "run-1") + make_rows(200, 2, "run-2")


def test_new_rows_append_after_old_manifests_and_the_chain_still_verifies(legacy: Path) -> None:
    before = _manifest_bytes(legacy)
    store = MemoryStore()
    catalog = Catalog.open(legacy)
    rows = [
        replace(
            r,
            source_kind="qd130",
            episode_key=f"LK{i:04d}",
            facility_signature="valid",
            facility_signer_sha256="ab" * 32,
        )
        for i, r in enumerate(make_rows(300, 2, "run-3"))
    ]
    result = catalog.append(
        rows, run_id="run-3", now=NOW + timedelta(days=3), store=store, retain_until=RETAIN
    )
    assert result.created
    assert result.manifest.seq == 3
    reopened = Catalog.open(legacy)
    assert [m.seq for m in reopened.manifests] == [1, 2, 3]
    assert {k: v for k, v in _manifest_bytes(legacy).items() if k in before} == before
    kinds = reopened.rows().column("source_kind").to_pylist()
    assert kinds == ["fhir"] * 5 + ["qd130"] * 2
    found = reopened.find_episode("LK0001")
    assert table_to_rows(found) == [rows[1]]
    assert reopened.find_episode("LK9999").num_rows == 0
    # the bucket copies (old and new) rebuild the same catalog
    rebuilt = Catalog.rebuild(legacy.parent / "rebuilt", store)
    assert _manifest_bytes(legacy.parent / "rebuilt") == _manifest_bytes(legacy)
    assert table_to_rows(rebuilt.rows()) == table_to_rows(reopened.rows())


def test_a_run_retried_after_the_upgrade_adopts_its_old_manifest(legacy: Path) -> None:
    catalog = Catalog.open(legacy)
    again = catalog.append(
        make_rows(200, 2, "run-2"),
        run_id="run-2",
        now=NOW + timedelta(days=2),
        store=MemoryStore(),
        retain_until=RETAIN,
    )
    assert not again.created
    assert again.manifest.seq == 2


def test_an_unknown_column_set_is_still_refused(legacy: Path) -> None:

    path = legacy / MANIFESTS_DIR / "0000000001.parquet"
    data = path.read_bytes()
    table = pq.read_table(pa.BufferReader(data))
    cut = table.drop_columns(["kek_id"])  # neither the current nor an older column set
    sink = pa.BufferOutputStream()
    pq.write_table(cut, sink)
    with pytest.raises(ManifestCorruptError, match="columns"):
        decode_header(sink.getvalue().to_pybytes(), name="cut")

"""Catalog: Parquet manifests, hash chain, crash safety, bucket copies and rebuild."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from archive.catalog import (
    BUCKET_PREFIX,
    GENESIS_SHA256,
    HEAD_FILE,
    MANIFESTS_DIR,
    SCHEMA,
    Catalog,
    CatalogRow,
    ManifestHeader,
    encode_manifest,
    manifest_key,
    manifest_name,
    manifest_retain_until,
    rows_to_table,
    table_to_rows,
)
from archive.core.errors import (
    CatalogError,
    ChainBrokenError,
    ManifestCorruptError,
    StoreUnavailableError,
)
from archive.store import COMPLIANCE, PutResult
from tests.support.catalog import ICT, NOW, RETAIN, append_run, make_row, make_rows
from tests.support.memstore import MemoryStore
from tests.support.paths import REPO

TAMPERED = (ManifestCorruptError, ChainBrokenError)


def build(directory: Path, runs: int = 3) -> tuple[Catalog, MemoryStore]:
    catalog, store = Catalog.open(directory, create=True), MemoryStore()
    for n in range(1, runs + 1):
        append_run(catalog, store, n)
    return catalog, store


def manifest_path(directory: Path, seq: int) -> Path:
    return directory / MANIFESTS_DIR / manifest_name(seq)


def bucket_bytes(store: MemoryStore, seq: int) -> bytes:
    head = store.latest(manifest_key(seq))
    assert head is not None
    return store.get(head.key, version_id=head.version_id)


def flip(path: Path, position: int) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= 0x01
    path.write_bytes(bytes(data))


# --- schema and rows -----------------------------------------------------------------------------


def test_row_dataclass_mirrors_the_schema() -> None:
    assert [f.name for f in fields(CatalogRow)] == SCHEMA.names
    nullable = [f.name for f in SCHEMA if f.nullable]  # null for FHIR rows
    assert nullable == ["episode_key", "facility_signature", "facility_signer_sha256"]
    assert SCHEMA.field("sealed_size").type == pa.int64()
    assert SCHEMA.field("signed_at").type == pa.timestamp("us", tz="UTC")


def test_rows_round_trip_with_all_types_and_aware_timestamps(tmp_path: Path) -> None:
    build(tmp_path, runs=2)
    reopened = Catalog.open(tmp_path)
    table = reopened.rows()
    assert table.schema.equals(SCHEMA)
    back = table_to_rows(table)
    assert back == make_rows(100, 3, "run-1") + make_rows(200, 3, "run-2")
    assert back[0].admitted_at.tzinfo is UTC
    assert back[0].admitted_at == datetime(2025, 2, 1, 8, 15, 30, 123456, tzinfo=ICT) + timedelta(
        hours=100
    )
    assert back[0].sealed_size == 5_000_000_100
    assert table_to_rows(rows_to_table(back)) == back


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("admitted_at", datetime(2025, 1, 1)),  # naive
        ("pdf_sha256", "ABC"),
        ("pdf_sha256", "A" * 64),  # upper-case hex is refused: one spelling per digest
        ("sealed_size", -1),
        ("kek_version", 2**31),
        ("facility", ""),
        ("source_kind", ""),
        ("episode_key", ""),
        ("facility_signer_sha256", "F" * 64),
    ],
)
def test_invalid_row_values_are_refused_without_echoing_them(field: str, value: object) -> None:
    changes: dict[str, Any] = {field: value}
    with pytest.raises(CatalogError, match=field) as info:
        replace(make_row(1, "run-1"), **changes)
    assert str(value) not in str(info.value) or value == ""


def test_empty_catalog_is_valid_and_has_the_schema(tmp_path: Path) -> None:
    catalog = Catalog.open(tmp_path / "cat", create=True)
    assert catalog.rows().schema.equals(SCHEMA)
    assert catalog.rows().num_rows == 0
    assert catalog.find(encounter_id="enc-000001").num_rows == 0
    assert not catalog.contains("enc-000001")
    assert catalog.encounter_ids() == set()
    assert catalog.latest_manifest_sha256 == GENESIS_SHA256
    assert Catalog.open(tmp_path / "cat").manifests == ()


def test_missing_directory_is_an_error_unless_created(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="create=True"):
        Catalog.open(tmp_path / "nope")


# --- chain ---------------------------------------------------------------------------------------


def test_several_runs_form_a_verified_chain(tmp_path: Path) -> None:
    catalog, _ = build(tmp_path, runs=3)
    reopened = Catalog.open(tmp_path)
    seqs = [m.seq for m in reopened.manifests]
    assert seqs == [1, 2, 3]
    prev = GENESIS_SHA256
    for seq, info in enumerate(reopened.manifests, start=1):
        data = manifest_path(tmp_path, seq).read_bytes()
        assert info.prev_sha256 == prev
        assert info.sha256 == hashlib.sha256(data).hexdigest()
        assert info.run_id == f"run-{seq}"
        assert info.created_at == NOW + timedelta(days=seq)
        assert info.row_count == 3
        prev = info.sha256
    head = json.loads((tmp_path / HEAD_FILE).read_text())
    assert head == {"catalog_format": 1, "manifest": manifest_name(3), "seq": 3, "sha256": prev}
    assert reopened.latest_manifest_sha256 == catalog.latest_manifest_sha256 == prev
    assert not reopened.head_pending


def test_queries(tmp_path: Path) -> None:
    catalog, _ = build(tmp_path, runs=2)
    assert catalog.contains("enc-000201")
    assert not catalog.contains("enc-000999")
    assert catalog.encounter_ids() == {f"enc-{i:06d}" for i in (100, 101, 102, 200, 201, 202)}
    found = catalog.find(encounter_id="enc-000201")
    assert table_to_rows(found) == [make_row(201, "run-2")]


def test_manifest_bytes_are_deterministic(tmp_path: Path) -> None:
    header = ManifestHeader(
        format_version=1, seq=1, run_id="r", created_at=NOW, row_count=2, prev_sha256="0" * 64
    )
    table = rows_to_table(make_rows(0, 2, "r"))
    assert encode_manifest(table, header) == encode_manifest(table, header)
    build(tmp_path / "a", runs=2)
    build(tmp_path / "b", runs=2)
    for seq in (1, 2):
        assert manifest_path(tmp_path / "a", seq).read_bytes() == (
            manifest_path(tmp_path / "b", seq).read_bytes()
        )


def _positions(size: int) -> list[int]:
    """Magic and first page header, every 11th byte (data pages and the Thrift footer with its
    key-value metadata), and the last 300 bytes (end of footer, footer length, trailing magic)."""
    return sorted({*range(64), *range(0, size, 11), *range(size - 300, size)})


@pytest.mark.parametrize("target", [1, 2, 3], ids=["first", "middle", "last"])
def test_one_flipped_byte_anywhere_in_any_manifest_is_detected(tmp_path: Path, target: int) -> None:
    build(tmp_path, runs=3)
    path = manifest_path(tmp_path, target)
    original = path.read_bytes()
    positions = _positions(len(original))
    assert len(positions) > 1000
    for position in positions:
        flip(path, position)
        with pytest.raises(TAMPERED) as info:
            Catalog.open(tmp_path)
        assert manifest_name(target) in str(info.value), position
        path.write_bytes(original)
    Catalog.open(tmp_path)  # and intact again


def test_flipped_byte_in_a_data_page_fails_the_page_checksum(tmp_path: Path) -> None:
    build(tmp_path, runs=1)
    path = manifest_path(tmp_path, 1)
    flip(path, 40)  # inside the first column chunk
    (tmp_path / HEAD_FILE).unlink()  # without HEAD, only Parquet's own checksums are left
    with pytest.raises(ManifestCorruptError, match="checksum") as info:
        Catalog.open(tmp_path)
    assert "CRC checksum verification failed" in str(info.value.__cause__)


def test_garbled_head_is_detected(tmp_path: Path) -> None:
    build(tmp_path, runs=2)
    (tmp_path / HEAD_FILE).write_bytes(b'{"seq": 2, "sha256": "')
    with pytest.raises(ChainBrokenError, match="HEAD is unreadable"):
        Catalog.open(tmp_path)


def test_a_manifest_removed_from_the_middle_is_detected(tmp_path: Path) -> None:
    build(tmp_path, runs=4)
    manifest_path(tmp_path, 2).unlink()
    with pytest.raises(ChainBrokenError, match=r"0000000002\.parquet is missing"):
        Catalog.open(tmp_path)


def test_the_newest_manifest_removed_is_detected(tmp_path: Path) -> None:
    build(tmp_path, runs=3)
    manifest_path(tmp_path, 3).unlink()
    with pytest.raises(ChainBrokenError, match=r"HEAD names manifest 0000000003\.parquet"):
        Catalog.open(tmp_path)


def test_head_deleted_is_detected(tmp_path: Path) -> None:
    build(tmp_path, runs=3)
    (tmp_path / HEAD_FILE).unlink()
    with pytest.raises(ChainBrokenError, match="HEAD was deleted"):
        Catalog.open(tmp_path)


def test_swapped_manifests_are_detected(tmp_path: Path) -> None:
    build(tmp_path, runs=3)
    a, b = manifest_path(tmp_path, 1), manifest_path(tmp_path, 2)
    a.rename(tmp_path / "x")
    b.rename(a)
    (tmp_path / "x").rename(b)
    with pytest.raises(ChainBrokenError, match=r"0000000001\.parquet records sequence number 2"):
        Catalog.open(tmp_path)


def test_removed_and_renumbered_manifest_is_detected(tmp_path: Path) -> None:
    build(tmp_path, runs=3)
    manifest_path(tmp_path, 2).unlink()
    manifest_path(tmp_path, 3).rename(manifest_path(tmp_path, 2))
    with pytest.raises(ChainBrokenError, match=r"0000000002\.parquet records sequence number 3"):
        Catalog.open(tmp_path)


def test_duplicated_manifest_is_detected(tmp_path: Path) -> None:
    build(tmp_path, runs=2)
    manifest_path(tmp_path, 3).write_bytes(manifest_path(tmp_path, 2).read_bytes())
    with pytest.raises(ChainBrokenError, match=r"0000000003\.parquet records sequence number 2"):
        Catalog.open(tmp_path)


def test_unexpected_file_in_the_manifest_directory_is_refused(tmp_path: Path) -> None:
    build(tmp_path, runs=1)
    (tmp_path / MANIFESTS_DIR / "copy.parquet").write_bytes(b"")
    with pytest.raises(CatalogError, match=r"copy\.parquet.*move it out"):
        Catalog.open(tmp_path)


def test_rewritten_newest_manifest_is_caught_by_its_bucket_copy(tmp_path: Path) -> None:
    catalog, store = build(tmp_path, runs=2)
    # Forge manifest 2 with other rows, chained correctly, and a matching HEAD: locally consistent.
    forged = encode_manifest(
        rows_to_table(make_rows(900, 1, "run-2")),
        ManifestHeader(
            format_version=1,
            seq=2,
            run_id="run-2",
            created_at=NOW,
            row_count=1,
            prev_sha256=catalog.manifests[0].sha256,
        ),
    )
    manifest_path(tmp_path, 2).write_bytes(forged)
    head = json.loads((tmp_path / HEAD_FILE).read_text())
    head["sha256"] = hashlib.sha256(forged).hexdigest()
    (tmp_path / HEAD_FILE).write_text(json.dumps(head))
    reopened = Catalog.open(tmp_path)
    with pytest.raises(ChainBrokenError, match="differs from its locked bucket copy"):
        reopened.sync(store, retain_until=RETAIN)
    with pytest.raises(ChainBrokenError, match="differs from its locked bucket copy"):
        append_run(reopened, store, 3)
    assert len(Catalog.open(tmp_path).manifests) == 2


def test_cut_short_local_catalog_is_restored_from_the_bucket(tmp_path: Path) -> None:
    """The residual risk (newest manifest and HEAD both rolled back) is undone at the next run:
    the bucket is the truth, the local directory a cache that catches up with it."""
    catalog, store = build(tmp_path, runs=3)
    original = manifest_path(tmp_path, 3).read_bytes()
    manifest_path(tmp_path, 3).unlink()
    head = {"catalog_format": 1, "manifest": manifest_name(2), "seq": 2}
    head["sha256"] = catalog.manifests[1].sha256
    (tmp_path / HEAD_FILE).write_text(json.dumps(head, sort_keys=True))
    shortened = Catalog.open(tmp_path)  # self-consistent: the local chain alone cannot tell
    assert len(shortened.manifests) == 2
    append_run(shortened, store, 4)
    assert [m.run_id for m in Catalog.open(tmp_path).manifests] == [
        f"run-{n}" for n in (1, 2, 3, 4)
    ]
    assert manifest_path(tmp_path, 3).read_bytes() == original


# --- crashes -------------------------------------------------------------------------------------


def test_partial_temp_file_is_ignored_then_cleaned_up(tmp_path: Path) -> None:
    _, store = build(tmp_path, runs=2)
    partial = tmp_path / MANIFESTS_DIR / f".{manifest_name(3)}.4242.tmp"
    partial.write_bytes(b"PAR1\x00\x01 half a manifest")
    (tmp_path / f".{HEAD_FILE}.4242.tmp").write_bytes(b"{")
    reopened = Catalog.open(tmp_path)
    assert [m.seq for m in reopened.manifests] == [1, 2]
    assert reopened.rows().num_rows == 6
    append_run(reopened, store, 3)
    assert not list(tmp_path.glob(".*.tmp"))
    assert not list((tmp_path / MANIFESTS_DIR).glob(".*.tmp"))
    assert [m.seq for m in Catalog.open(tmp_path).manifests] == [1, 2, 3]


_CHILD = """
import os, sys, time
from pathlib import Path
from archive.catalog import Catalog
from tests.support.catalog import append_run
from tests.support.memstore import MemoryStore

stop_at, calls, real_replace = int(sys.argv[2]), [], os.replace
def replace_then_hang(src, dst):
    calls.append(dst)
    if len(calls) == stop_at:
        print("hanging", flush=True)
        time.sleep(60)
    real_replace(src, dst)
os.replace = replace_then_hang
append_run(Catalog.open(Path(sys.argv[1])), MemoryStore(), 4)
"""


def _kill_child_appending_run_4(directory: Path, *, stop_at_replace: int) -> None:
    """Run an append in a child that hangs at its n-th os.replace, then SIGKILL it there."""
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(directory), str(stop_at_replace)],
        cwd=REPO,
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"hanging\n"
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL


def test_killed_before_the_manifest_rename_leaves_the_previous_catalog(tmp_path: Path) -> None:
    catalog, store = build(tmp_path, runs=3)
    before = catalog.rows()
    _kill_child_appending_run_4(tmp_path, stop_at_replace=1)
    assert list((tmp_path / MANIFESTS_DIR).glob(".*.tmp"))  # the fsynced temp file is left over
    reopened = Catalog.open(tmp_path)
    assert reopened.rows().equals(before)
    assert reopened.latest_manifest_sha256 == catalog.latest_manifest_sha256
    append_run(reopened, store, 4)
    assert not list((tmp_path / MANIFESTS_DIR).glob(".*.tmp"))
    assert [m.seq for m in Catalog.open(tmp_path).manifests] == [1, 2, 3, 4]


def test_killed_between_manifest_and_head_is_completed_by_sync(tmp_path: Path) -> None:
    _, store = build(tmp_path, runs=3)
    _kill_child_appending_run_4(tmp_path, stop_at_replace=2)
    pending = Catalog.open(tmp_path)
    assert pending.head_pending
    assert pending.contains("enc-000400")
    assert json.loads((tmp_path / HEAD_FILE).read_text())["seq"] == 3
    uploads = pending.sync(store, retain_until=RETAIN)
    assert [u.key for u in uploads] == [manifest_key(4)]
    assert bucket_bytes(store, 4) == manifest_path(tmp_path, 4).read_bytes()
    confirmed = Catalog.open(tmp_path)
    assert not confirmed.head_pending
    assert json.loads((tmp_path / HEAD_FILE).read_text())["seq"] == 4


def test_flipped_byte_in_a_pending_manifest_data_page_is_detected(tmp_path: Path) -> None:
    build(tmp_path, runs=2)
    head_of_1 = json.loads((tmp_path / HEAD_FILE).read_text())
    head_of_1.update(seq=1, manifest=manifest_name(1))
    head_of_1["sha256"] = hashlib.sha256(manifest_path(tmp_path, 1).read_bytes()).hexdigest()
    (tmp_path / HEAD_FILE).write_text(json.dumps(head_of_1))  # as if killed before HEAD
    assert Catalog.open(tmp_path).head_pending
    flip(manifest_path(tmp_path, 2), 40)
    with pytest.raises(ManifestCorruptError, match=r"0000000002\.parquet"):
        Catalog.open(tmp_path)


class FailingStore(MemoryStore):
    """Refuses one key: the process 'dies' after that manifest's local write, before its upload."""

    fail_key: str | None = None

    def put_locked(self, key: str, data: bytes, *, retain_until: datetime) -> PutResult:
        if key == self.fail_key:
            raise StoreUnavailableError("bucket unreachable")
        return super().put_locked(key, data, retain_until=retain_until)


def test_a_store_failure_at_the_claim_leaves_no_manifest_anywhere(tmp_path: Path) -> None:
    catalog, store = Catalog.open(tmp_path, create=True), FailingStore()
    append_run(catalog, store, 1)
    store.fail_key = manifest_key(2)
    with pytest.raises(StoreUnavailableError):
        append_run(catalog, store, 2)
    assert [m.seq for m in Catalog.open(tmp_path).manifests] == [1]  # the bucket first
    assert store.latest(manifest_key(2)) is None
    store.fail_key = None
    append_run(Catalog.open(tmp_path), store, 2)
    for m in Catalog.open(tmp_path).manifests:
        assert bucket_bytes(store, m.seq) == manifest_path(tmp_path, m.seq).read_bytes()


@pytest.mark.parametrize("recover", ["append", "sync"])
def test_a_local_manifest_the_bucket_lacks_is_uploaded_by_the_next_run(
    tmp_path: Path, recover: str
) -> None:
    """Releases before the bucket-first claim wrote locally first: a crash before the upload
    left a local manifest the bucket lacks, which the next append or sync uploads."""
    build(tmp_path, runs=2)
    store = MemoryStore()  # holds manifest 1 only
    store.put_locked(manifest_key(1), manifest_path(tmp_path, 1).read_bytes(), retain_until=RETAIN)
    reopened = Catalog.open(tmp_path)
    if recover == "append":
        append_run(reopened, store, 3)
    else:
        assert [u.key for u in reopened.sync(store, retain_until=RETAIN)] == [manifest_key(2)]
        assert reopened.sync(store, retain_until=RETAIN) == ()
    for m in Catalog.open(tmp_path).manifests:
        assert bucket_bytes(store, m.seq) == manifest_path(tmp_path, m.seq).read_bytes()


def test_retried_append_of_the_same_run_is_idempotent(tmp_path: Path) -> None:
    catalog, store = build(tmp_path, runs=2)
    rows = make_rows(200, 3, "run-2")
    again = catalog.append(rows, run_id="run-2", now=NOW, store=store, retain_until=RETAIN)
    assert not again.created
    assert again.manifest == catalog.manifests[1]
    assert not again.upload.created
    assert len(Catalog.open(tmp_path).manifests) == 2
    with pytest.raises(CatalogError, match="already wrote manifest"):
        catalog.append(rows[:1], run_id="run-2", now=NOW, store=store, retain_until=RETAIN)


def test_an_object_version_is_catalogued_once(tmp_path: Path) -> None:
    catalog, store = build(tmp_path, runs=1)
    twice = [make_row(100, "run-9")]
    with pytest.raises(CatalogError, match="row 0 names an object version that is already"):
        catalog.append(twice, run_id="run-9", now=NOW, store=store, retain_until=RETAIN)
    row = make_row(5, "run-9")
    with pytest.raises(CatalogError, match="row 1"):
        catalog.append([row, row], run_id="run-9", now=NOW, store=store, retain_until=RETAIN)


def test_a_duplicate_deep_in_the_chain_behind_new_rows_is_found(tmp_path: Path) -> None:
    """The check reads only the catalogued rows with the batch's keys: a version of the first
    manifest is found behind new rows, and a new version of a catalogued key is no duplicate."""
    catalog, store = build(tmp_path, runs=3)
    old = make_row(101, "run-9")  # catalogued by run 1
    amended = replace(make_row(201, "run-9"), version_id="v201-amended")  # a new version
    rows = [*make_rows(900, 5, "run-9"), amended, old]
    with pytest.raises(CatalogError, match="row 6 names an object version that is already"):
        catalog.append(rows, run_id="run-9", now=NOW, store=store, retain_until=RETAIN)
    done = catalog.append(rows[:-1], run_id="run-9", now=NOW, store=store, retain_until=RETAIN)
    assert (done.created, done.manifest.row_count) == (True, 6)


def test_rows_of_another_run_are_refused(tmp_path: Path) -> None:
    catalog = Catalog.open(tmp_path, create=True)
    with pytest.raises(CatalogError, match="row 0 carries another run_id"):
        catalog.append(
            [make_row(1, "run-1")],
            run_id="run-2",
            now=NOW,
            store=MemoryStore(),
            retain_until=RETAIN,
        )


def test_a_second_writer_waits_for_the_first_then_gives_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog, store = build(tmp_path, runs=1)
    monkeypatch.setattr("archive.catalog.manifests.WRITER_WAIT_S", 0.3)
    with open(tmp_path / ".lock", "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(CatalogError, match="has been appending"):
            append_run(catalog, store, 2)
        releaser = threading.Timer(0.1, lambda: fcntl.flock(lock.fileno(), fcntl.LOCK_UN))
        releaser.start()
        append_run(catalog, store, 2)  # waited for the other writer, then appended
        releaser.join()
    assert [m.run_id for m in Catalog.open(tmp_path).manifests] == ["run-1", "run-2"]


def test_an_append_by_another_instance_is_seen_before_writing(tmp_path: Path) -> None:
    first, store = build(tmp_path, runs=1)
    second = Catalog.open(tmp_path)
    append_run(first, store, 2)
    append_run(second, store, 3)
    reopened = Catalog.open(tmp_path)
    assert [m.run_id for m in reopened.manifests] == ["run-1", "run-2", "run-3"]


# --- bucket --------------------------------------------------------------------------------------


def test_bucket_copies_are_locked_under_sequence_keys(tmp_path: Path) -> None:
    _, store = build(tmp_path, runs=2)
    keys = sorted({v.key for v in store.list_versions(BUCKET_PREFIX)})
    assert keys == [
        "catalog/sealed/v1/manifests/0000000001.parquet",
        "catalog/sealed/v1/manifests/0000000002.parquet",
    ]
    head = store.latest(manifest_key(2))
    assert head is not None
    assert head.lock.mode == COMPLIANCE
    assert head.lock.retain_until == RETAIN
    assert bucket_bytes(store, 2) == manifest_path(tmp_path, 2).read_bytes()


def test_rebuild_from_the_bucket_equals_the_local_catalog(tmp_path: Path) -> None:
    original, store = build(tmp_path / "local", runs=3)
    rebuilt = Catalog.rebuild(tmp_path / "rebuilt", store)
    for seq in (1, 2, 3):
        assert manifest_path(tmp_path / "rebuilt", seq).read_bytes() == (
            manifest_path(tmp_path / "local", seq).read_bytes()
        )
    assert (tmp_path / "rebuilt" / HEAD_FILE).read_bytes() == (
        (tmp_path / "local" / HEAD_FILE).read_bytes()
    )
    assert rebuilt.rows().equals(original.rows())
    assert rebuilt.manifests == original.manifests
    append_run(rebuilt, store, 4)  # and it carries on where the bucket left off


def test_rebuild_of_an_empty_bucket_is_an_empty_catalog(tmp_path: Path) -> None:
    rebuilt = Catalog.rebuild(tmp_path / "rebuilt", MemoryStore())
    assert rebuilt.rows().num_rows == 0


def test_rebuild_refuses_to_overwrite_a_catalog(tmp_path: Path) -> None:
    _, store = build(tmp_path / "local", runs=1)
    with pytest.raises(CatalogError, match="is not empty"):
        Catalog.rebuild(tmp_path / "local", store)
    (tmp_path / "empty").mkdir()
    assert len(Catalog.rebuild(tmp_path / "empty", store).manifests) == 1


@pytest.mark.parametrize(("target", "position"), [(1, 40), (2, -30), (3, 40)])
def test_rebuild_detects_a_corrupted_bucket_copy(
    tmp_path: Path, target: int, position: int
) -> None:
    _, store = build(tmp_path / "local", runs=3)
    data = bytearray(bucket_bytes(store, target))
    data[position] ^= 0x01
    head = store.latest(manifest_key(target))
    assert head is not None
    store.corrupt(head.key, version_id=head.version_id, data=bytes(data))
    with pytest.raises(TAMPERED, match=manifest_name(target)) as info:
        Catalog.rebuild(tmp_path / "rebuilt", store)
    assert "investigate the storage" in str(info.value)  # not "rebuild from the bucket" again
    assert sorted(p.name for p in tmp_path.iterdir()) == ["local"]  # nothing half-built is left


# --- helpers and scale ---------------------------------------------------------------------------


def test_manifest_retain_until_adds_calendar_years() -> None:
    assert manifest_retain_until(NOW, years=100) == datetime(2125, 3, 1, 19, 30, tzinfo=UTC)
    leap = datetime(2024, 2, 29, tzinfo=UTC)
    assert manifest_retain_until(leap, years=1) == datetime(2025, 3, 1, tzinfo=UTC)


def test_a_thousand_rows_append_and_read_well_under_a_second(tmp_path: Path) -> None:
    catalog, store = build(tmp_path, runs=1)
    rows = make_rows(10_000, 1000, "run-big")
    started = time.perf_counter()
    catalog.append(rows, run_id="run-big", now=NOW, store=store, retain_until=RETAIN)
    reopened = Catalog.open(tmp_path)
    assert reopened.rows().num_rows == 1003
    assert reopened.contains("enc-010999")
    assert len(reopened.encounter_ids()) == 1003
    elapsed = time.perf_counter() - started
    assert elapsed < 0.5, elapsed

"""The nightly flow fanned out over a real Dask cluster (a scheduler and worker processes on
loopback, through ``prefect-dask``): batches on both workers, a worker killed mid-run, workers
that cannot read the source or have no store credentials.

The cluster (tests/integration/flows/conftest.py) is shared with verification's fan-out tests.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from archive.catalog import Catalog
from archive.store import S3ObjectStore
from infra.dask_cluster import DaskCluster
from infra.settings import AppSettings as Settings
from tests.support.cluster import cluster_settings, lone_worker
from tests.support.nightly import DAY, Export, make_export, record_versions

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    return make_export(tmp_path_factory.mktemp("export"), encounters=24, seed=3)


def _run(
    settings: Settings, export: Export, monkeypatch: pytest.MonkeyPatch, batch_size: int = 2
) -> Any:
    from flows import nightly

    monkeypatch.setattr(nightly, "load_settings", lambda: settings)
    return nightly.nightly_archive(
        since=DAY, source=str(export.path), batch_size=batch_size, return_state=True
    )


def _exactly_once(settings: Settings, export: Export) -> None:
    versions = list(record_versions(S3ObjectStore.from_settings(settings)))
    assert len({key for key, _ in versions}) == len(versions) == len(export.summary.in_window)
    rows = Catalog.open(settings.catalog_dir).rows().to_pylist()
    assert sorted(r["encounter_id"] for r in rows) == sorted(export.summary.in_window)
    assert {(r["object_key"], r["version_id"]) for r in rows} == set(versions)


def test_batches_run_on_both_workers_and_one_writer_catalogues_them(
    settings: Settings,
    export: Export,
    cluster: DaskCluster,
    secret: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    on_cluster = cluster_settings(settings, cluster.address, secret)
    state = _run(on_cluster, export, monkeypatch)
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary["archived"] == len(export.summary.in_window)
    assert summary["failed"] == {}
    assert set(summary["batches_by_worker"]) == set(cluster.identities())  # both did batches
    assert sum(summary["batches_by_worker"].values()) == -(-summary["archived"] // 2)
    assert summary["evidence_pending"] == 0  # the one writer gave every record its evidence
    _exactly_once(on_cluster, export)


def test_a_worker_killed_mid_run_loses_no_record_and_duplicates_none(
    settings: Settings,
    export: Export,
    cluster: DaskCluster,
    secret: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    on_cluster = cluster_settings(settings, cluster.address, secret)
    victim = next(iter(cluster.workers))
    store = S3ObjectStore.from_settings(on_cluster)
    killed = threading.Event()
    stored_before_kill: list[int] = []

    def kill_after_first_record() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not list(record_versions(store)):
            time.sleep(0.05)
        cluster.kill_worker(victim)
        stored_before_kill.append(len(list(record_versions(store))))
        killed.set()

    killer = threading.Thread(target=kill_after_first_record, daemon=True)
    killer.start()
    try:
        state = _run(on_cluster, export, monkeypatch)
        killer.join(timeout=30)
        assert killed.is_set()
        assert stored_before_kill[0] < len(export.summary.in_window)  # killed mid-run
        if not state.is_completed():  # the batch was lost with its worker: a rerun finishes it
            assert "cluster.batch_lost" in (state.message or ""), state.message
            again = _run(on_cluster, export, monkeypatch)
            assert again.is_completed(), again.message
        _exactly_once(on_cluster, export)
    finally:
        killer.join(timeout=30)
        cluster.add_worker(env={"EMR_ARCHIVE_S3__SECRET_ACCESS_KEY": secret})


@pytest.mark.parametrize(
    ("hide_source", "reason"),
    [(True, "worker.source_unavailable"), (False, "worker.store_unavailable")],
    ids=["no-source", "no-store-secret"],
)
def test_a_worker_without_the_source_or_the_store_secret_fails_the_run_clearly(
    settings: Settings,
    export: Export,
    lone_scheduler: DaskCluster,
    secret: str,
    monkeypatch: pytest.MonkeyPatch,
    hide_source: bool,
    reason: str,
) -> None:
    # A scheduler with only the unfit worker: every batch goes to it. One does not have the
    # export's directory; the other has no S3 secret in its environment. A few batches (each
    # fails the same way, the first after the worker has imported the code).
    with lone_worker(lone_scheduler, hide=export.path if hide_source else None):
        on_lone = cluster_settings(settings, lone_scheduler.address, secret)
        state = _run(on_lone, export, monkeypatch, batch_size=8)
    assert state.is_failed()
    assert f"record(s) failed ({reason}: " in (state.message or "")
    summary = state.result(raise_on_failure=False)
    assert summary["archived"] == summary["adopted"] == 0
    assert summary["failed"] == {reason: len(export.summary.in_window)}
    assert summary["manifest"] is None  # nothing catalogued
    assert list(record_versions(S3ObjectStore.from_settings(settings))) == []

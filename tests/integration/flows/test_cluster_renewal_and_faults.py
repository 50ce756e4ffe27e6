"""Hash-tree renewal on the real Dask cluster (tests/integration/flows/conftest.py), and what the
cluster's faults do to it and to verification: every catalogued PDF read and re-hashed on the
workers with the leaves this machine computes, one TSA call, one writer; a scheduler without
workers refuses before any work; a worker without the key-encryption keys fails its documents
by name (the provider said, no PHI), none renewed; a verification worker killed with kill -9
mid-run leaves every record verified exactly once.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from distributed import Client

from archive.catalog import Catalog, CatalogRow, table_to_rows
from archive.core.errors import ClusterUnavailableError
from archive.pipeline.evidence_rehash import Document, new_leaf
from archive.pipeline.evidence_renewal_state import RenewalState
from archive.pipeline.evidence_wiring import record_members
from archive.seal import ObjectIdentity, open_keys, unseal
from archive.store import S3ObjectStore, SealedStore
from flows.cluster import ensure_cluster
from flows.outcome import summary_of
from infra.dask_cluster import DaskCluster
from infra.settings import AppSettings as Settings
from tests.support.cluster import cluster_settings, lone_worker
from verification.config import VerificationSettings
from verification.results import Status

pytestmark = pytest.mark.integration


def _rows(settings: Settings) -> list[CatalogRow]:
    return table_to_rows(Catalog.open(settings.catalog_dir).rows())


def _rehash(
    settings: Settings, algorithm: str, monkeypatch: pytest.MonkeyPatch, batch_size: int = 2
) -> Any:
    """The ``evidence-rehash`` flow's final state, ``batch_size`` documents a task."""
    from flows import evidence

    monkeypatch.setattr(evidence, "SETTINGS", settings)
    return evidence.evidence_rehash(algorithm=algorithm, batch_size=batch_size, return_state=True)


def _leaves_here(settings: Settings, algorithm: str) -> dict[str, str]:
    """Each record's new leaf as this machine computes it (reads only)."""
    store = S3ObjectStore.from_settings(settings)
    keys = open_keys(settings)
    sealed = SealedStore.for_settings(settings, store, keys=keys)
    leaves = {}
    rows = _rows(settings)
    for row, member in zip(rows, record_members(rows), strict=True):
        identity = ObjectIdentity(row.bucket, row.object_key, row.encounter_id)
        sealed_pdf = store.get(row.object_key, version_id=row.version_id)
        pdf = unseal(sealed_pdf, identity=identity, keys=keys, settings=settings.seal)
        document = Document(member.key, member.sha256, member.retain_until, partial(bytes, pdf))
        leaf = new_leaf(sealed, document, algorithm)
        assert not isinstance(leaf, str), leaf
        leaves[member.key] = leaf.leaf
    return leaves


def test_a_hash_tree_renewal_rehashes_every_record_on_both_workers_with_one_writer(
    archived: Settings, cluster: DaskCluster, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = cluster_settings(archived, cluster.address, secret)
    rows = _rows(settings)
    expected = _leaves_here(settings, "sha512")
    state = _rehash(settings, "sha512", monkeypatch)
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary["failed"] == {}
    assert summary["renewed"] == len(rows) + 1  # and the run's catalog manifest, hashed here
    assert summary["timestamps"] == 1  # one TSA call for the tree
    assert set(summary["batches_by_worker"]) == set(cluster.identities())  # both did some
    assert sum(summary["batches_by_worker"].values()) == -(-len(rows) // 2)
    # The one writer stored the leaves the workers computed: this machine's, record by record.
    sealed = SealedStore.for_settings(
        settings, S3ObjectStore.from_settings(settings), keys=open_keys(settings)
    )
    state_ = RenewalState(sealed)
    batches = [state_.load_hash_batch(b) for b in state_.hash_batch_ids()]
    stored = {e.key: e.leaf for b in batches if b.algorithm == "sha512" for e in b.entries}
    assert {k: stored[k] for k in expected} == expected  # a rerun adds nothing: unit-tested


def test_no_worker_refuses_and_a_worker_without_the_keys_fails_by_provider(
    archived: Settings, lone_scheduler: DaskCluster, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A scheduler nobody has joined: refused before any work, not waited on forever.
    with pytest.raises(ClusterUnavailableError, match="no Dask worker has joined"):
        ensure_cluster(lone_scheduler.address, timeout_s=1.0)
    # One worker with the store's secret but not the keyring (its directory is not there on that
    # machine: an empty file system mounted over it). Two tasks, each refused the same way.
    secret_only = {"EMR_ARCHIVE_S3__SECRET_ACCESS_KEY": secret}
    with lone_worker(lone_scheduler, env=secret_only, hide=archived.keyring_dir):
        settings = cluster_settings(archived, lone_scheduler.address, secret)
        state = _rehash(settings, "sha3_512", monkeypatch, batch_size=6)
    rows = _rows(settings)
    assert state.is_failed()
    message = state.message or ""
    assert "worker.keys_unavailable" in message
    assert "keys.provider = local" in message
    assert f"local keyring in {settings.keyring_dir}" in message  # what to give the worker
    assert not any(r.encounter_id in message or r.patient_pseudonym in message for r in rows)
    summary = state.result(raise_on_failure=False)
    assert summary["failed"] == {"worker.keys_unavailable": len(rows)}  # none renewed
    assert summary["renewed"] == 1  # the manifest, a file of the flow's machine
    # Verification's worker says the same (test_verify_cluster.py, in this process).


def test_a_verification_worker_killed_mid_run_leaves_every_record_verified_once(
    archived: Settings,
    cluster: DaskCluster,
    secret: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flows import verify

    settings = cluster_settings(archived, cluster.address, secret)
    rows = _rows(settings)
    addresses = cluster.identities()
    victim_address, victim = next(iter(addresses.items()))
    killed = threading.Event()

    def kill_once_busy() -> None:  # kill -9 while the victim holds a batch
        with Client(cluster.address, timeout=10) as client:  # type: ignore[no-untyped-call]
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if client.processing().get(victim_address):
                    cluster.kill_worker(victim)
                    killed.set()
                    return
                time.sleep(0.02)

    monkeypatch.setattr(verify, "SETTINGS", settings)
    killer = threading.Thread(target=kill_once_busy, daemon=True)
    killer.start()
    try:
        vsettings = VerificationSettings(output_dir=tmp_path / "1", workers=1, batch_size=1)
        monkeypatch.setattr(verify, "VERIFICATION_SETTINGS", vsettings)
        first = summary_of(verify.verify_archive, mode="full")
        killer.join(timeout=30)
        assert killed.is_set()
        logs = [first["log"]]
        if first["status"] != Status.PASSED.value:  # the batch was lost: a rerun verifies it
            assert set(first["reasons"]) == {"cluster.batch_lost"}, first["reasons"]
            vsettings = vsettings.model_copy(update={"output_dir": tmp_path / "2"})
            monkeypatch.setattr(verify, "VERIFICATION_SETTINGS", vsettings)
            again = summary_of(verify.verify_archive, mode="full")
            assert again["status"] == Status.PASSED.value, again["reasons"]
            logs.append(again["log"])
        once = Counter({r.encounter_id: 1 for r in rows})
        for log in logs:  # every record once in each run's log, none twice, none missing
            assert Counter(r["encounter_id"] for r in pq.read_table(log).to_pylist()) == once
        assert {r["status"] for r in pq.read_table(logs[-1]).to_pylist()} == {"passed"}
    finally:
        killer.join(timeout=30)
        if killed.is_set():  # the session's cluster gets its second worker back
            cluster.add_worker(env={"EMR_ARCHIVE_S3__SECRET_ACCESS_KEY": secret})

"""Verification fanned out over the real Dask cluster (tests/integration/flows/conftest.py):
every record's checks run on the workers, with the verdicts of the in-process run; damage below
the S3 API is found there too; a worker that cannot read the store leaves its records
indeterminate under a named reason, never passed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from archive.catalog import Catalog, table_to_rows
from archive.core.errors import WorkerKeysError, WorkerStoreError
from archive.store import S3ObjectStore
from flows.outcome import summary_of
from infra.dask_cluster import DaskCluster
from infra.settings import AppSettings as Settings
from tests.support.cluster import cluster_settings
from tests.support.verification import flip_on_disk
from verification.config import VerificationSettings
from verification.remote import unverified, verify_remote_batch
from verification.results import Status
from verification.run import RunPlan, VerificationRun
from verification.select import Mode, Selection

pytestmark = pytest.mark.integration

Verdicts = dict[str, tuple[str, str, tuple[tuple[str, str, str], ...]]]


def _vsettings(directory: Path) -> VerificationSettings:
    # Two records a batch: several batches, so both workers get some. One read attempt: a
    # damaged needle takes SeaweedFS seconds to refuse, every time.
    return VerificationSettings(output_dir=directory, workers=1, batch_size=2, read_attempts=1)


def _verify_on(
    settings: Settings, vsettings: VerificationSettings, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    from flows import verify

    monkeypatch.setattr(verify, "SETTINGS", settings)
    monkeypatch.setattr(verify, "VERIFICATION_SETTINGS", vsettings)
    return summary_of(verify.verify_archive, mode="full")


def _verdicts(log: str) -> Verdicts:
    """encounter id -> (status, reason, every check's (name, status, reason)), from a run's log."""
    rows = pq.read_table(log).to_pylist()
    return {
        r["encounter_id"]: (
            r["status"],
            r["reason_code"],
            tuple((c["check"], c["status"], c["reason_code"]) for c in json.loads(r["checks"])),
        )
        for r in rows
    }


def _in_process(settings: Settings, vsettings: VerificationSettings) -> Verdicts:
    plan = RunPlan.create(
        settings, vsettings, selection=Selection(mode=Mode.FULL), now=datetime.now(UTC)
    )
    with VerificationRun.start(settings, vsettings, plan) as run:
        for batch in run.batches():
            run.verify_batch(batch)
        summary = run.finish()
    assert summary.log_path is not None
    return _verdicts(str(summary.log_path))


def test_a_full_verification_on_the_cluster_checks_every_record_as_in_process(
    archived: Settings,
    cluster: DaskCluster,
    secret: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = cluster_settings(archived, cluster.address, secret)
    rows = table_to_rows(Catalog.open(settings.catalog_dir).rows())
    in_process = _in_process(settings, _vsettings(tmp_path / "in-process"))
    assert {v[0] for v in in_process.values()} == {"passed"}
    full = {"object", "unseal", "signature", "pdfa", "embedded-data", "conversion-mark", "lock"}
    assert all(full <= {name for name, _, _ in v[2]} for v in in_process.values())

    # Damage below the S3 API: SeaweedFS refuses to serve the changed needle (one damaged read
    # costs it ~13 s, so the cluster run is done once, on the damaged archive).
    victim = rows[1]
    store = S3ObjectStore.from_settings(settings)
    flip_on_disk(settings, store.get(victim.object_key, version_id=victim.version_id))

    summary = _verify_on(settings, _vsettings(tmp_path / "cluster"), monkeypatch)
    assert summary["status"] == Status.FAILED.value
    assert summary["reasons"] == {"object.unreadable": 1}
    assert set(summary["batches_by_worker"]) == set(cluster.identities())  # both verified
    assert sum(summary["batches_by_worker"].values()) == -(-len(rows) // 2)
    on_cluster = _verdicts(summary["log"])
    assert set(on_cluster) == {r.encounter_id for r in rows}  # every record, once
    assert on_cluster.pop(victim.encounter_id)[:2] == ("failed", "object.unreadable")
    # Every other record: the same checks with the same verdicts as in the flow's own process.
    assert on_cluster == {k: v for k, v in in_process.items() if k != victim.encounter_id}


@pytest.mark.parametrize(
    "worker_secret", [None, "not-the-secret"], ids=["no-secret", "wrong-secret"]
)
def test_a_worker_that_cannot_read_the_store_fails_its_batch_by_name_and_it_is_never_passed(
    archived: Settings,
    secret: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    worker_secret: str | None,
) -> None:
    """What a cluster worker does with a batch (called here in this process, whose environment
    plays the worker's: the shipped settings carry no secret), and what the flow reports for
    it. A worker failing on Dask comes back to the flow the same way (test_cluster.py)."""
    settings = cluster_settings(archived, "tcp://127.0.0.1:1", secret)
    vsettings = _vsettings(tmp_path)
    plan = RunPlan.create(
        settings, vsettings, selection=Selection(mode=Mode.FULL), now=datetime.now(UTC)
    )
    with VerificationRun.start(settings, vsettings, plan) as run:
        context = run.context()
        assert context.settings.s3.secret_access_key is None  # nothing secret is shipped
        monkeypatch.delenv("EMR_ARCHIVE_S3__SECRET_ACCESS_KEY", raising=False)
        if worker_secret is not None:
            monkeypatch.setenv("EMR_ARCHIVE_S3__SECRET_ACCESS_KEY", worker_secret)
        with pytest.raises(WorkerStoreError) as failed:
            verify_remote_batch(context, run.rows, index=0, now=plan.moment, worker="here")
        assert secret not in str(failed.value)
        reason = f"{failed.value.reason_code} ({failed.value})"
        run.absorb(unverified(run.rows, *reason.split(" ", 1)))
        summary = run.finish()
    assert summary.status is Status.INDETERMINATE  # never passed, and the reason named
    assert summary.reasons() == {"worker.store_unavailable": len(run.rows)}
    assert summary.counts()["passed"] == 0
    assert summary.report_path is not None
    assert "worker.store_unavailable" in summary.report_path.read_text()


def test_a_worker_without_the_keyring_names_its_provider_and_its_records_are_never_passed(
    archived: Settings, secret: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As above, for a machine that has the store's secret but not the keyring (here: the
    shipped settings name a directory this process does not have; on the cluster the re-hash
    test hides the real one from its worker, test_cluster_renewal_and_faults.py)."""
    away = tmp_path / "no-keys"
    settings = cluster_settings(archived, "tcp://127.0.0.1:1", secret)
    monkeypatch.setenv("EMR_ARCHIVE_S3__SECRET_ACCESS_KEY", secret)  # the store: reachable
    vsettings = _vsettings(tmp_path)
    plan = RunPlan.create(
        settings, vsettings, selection=Selection(mode=Mode.FULL), now=datetime.now(UTC)
    )
    with VerificationRun.start(settings, vsettings, plan) as run:
        context = run.context()
        keys = context.settings.keys.model_copy(update={"keyring_dir": away})
        context.settings = context.settings.model_copy(update={"keys": keys})
        with pytest.raises(WorkerKeysError) as failed:
            verify_remote_batch(context, run.rows, index=0, now=plan.moment, worker="here")
        message = str(failed.value)
        assert f"keys.provider = local; KeyringError: no keyring in {away}" in message
        assert f"from the local keyring in {away}" in message  # what to give the machine
        assert not any(
            r.encounter_id in message or r.patient_pseudonym in message for r in run.rows
        )
        run.absorb(unverified(run.rows, failed.value.reason_code, message))
        summary = run.finish()
    assert summary.status is Status.INDETERMINATE  # never passed, and the reason named
    assert summary.reasons() == {"worker.keys_unavailable": len(run.rows)}

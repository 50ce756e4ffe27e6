"""A backfill over several days on the real stack: the CLI killed (-9, with its workers) in the
middle of a day, then rerun on the Dask cluster: the done day is skipped, the rest archived,
every record exactly once in the bucket and the catalog, one manifest per day appended by the
flow's process; a nightly run is refused while a day is in progress; a day waits for a run that
holds the catalog; a second backfill of the same source is refused.

One sample export spans two local days: the sample's day and a few encounters discharged the day
before (``emr-archive sample`` writes them around its ``--day``; the morning after is not over
when the export is taken, so a backfill over it stops there with the source's error).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from archive.catalog import Catalog
from archive.core.errors import RunInProgressError
from archive.pipeline import RunLock
from archive.pipeline.backfill_ledger import DayLedger
from archive.seal import open_keys
from archive.store import S3ObjectStore
from infra.dask_cluster import DaskCluster
from infra.settings import AppSettings as Settings
from tests.support.cluster import cluster_settings
from tests.support.nightly import DAY, Export, cli_env, make_export, record_versions

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FIRST, LAST = DAY - timedelta(days=1), DAY


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    # seed 10: 2 encounters discharged on FIRST, 12 on DAY (few records: the test is about days).
    made = make_export(tmp_path_factory.mktemp("export"), encounters=14, seed=10, bad_share=0)
    assert _discharged_on(made, FIRST) == 2
    assert len(made.summary.in_window) == 12
    return made


@pytest.fixture(autouse=True)
def _patient_prefect() -> Iterator[None]:
    # This process's temporary Prefect server gets 20 s to start; a loaded test box needs more.
    from prefect.settings import (
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
        temporary_settings,
    )

    with temporary_settings(updates={PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: 120}):
        yield


def _shared_prefect_api() -> str:
    """This process's temporary Prefect server, started now so that the CLI child reports to it
    instead of starting one of its own (20-50 s on a loaded machine); this process's flows use it
    later, as they would have started it."""
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start()  # once per process: a no-op when an earlier test's flow started it
    return server.api_url


def _discharged_on(export: Export, day: date) -> int:
    count = 0
    for line in (export.path / "Encounter.ndjson").read_text(encoding="utf-8").splitlines():
        try:
            end = json.loads(line).get("period", {}).get("end") or ""
        except (ValueError, AttributeError):  # the sample's planted bad lines
            continue
        count += end.startswith(day.isoformat())
    return count


def _expected(export: Export) -> int:
    return len(export.summary.in_window) + _discharged_on(export, FIRST)


def _backfill(settings: Settings, export: Export, mp: pytest.MonkeyPatch, **kw: Any) -> Any:
    from flows import backfill
    from flows.outcome import summary_of

    mp.setattr(backfill, "load_settings", lambda: settings)
    return summary_of(
        backfill.backfill_archive, since=FIRST, until=LAST, source=str(export.path), **kw
    )


def _exactly_once(settings: Settings, export: Export) -> list[dict[str, Any]]:
    versions = list(record_versions(S3ObjectStore.from_settings(settings)))
    assert len({key for key, _ in versions}) == len(versions) == _expected(export)
    rows: list[dict[str, Any]] = Catalog.open(settings.catalog_dir).rows().to_pylist()
    ids = [r["encounter_id"] for r in rows]
    assert len(ids) == len(set(ids)) == _expected(export)
    assert set(export.summary.in_window) <= set(ids)
    assert {(r["object_key"], r["version_id"]) for r in rows} == set(versions)
    return rows


def _done_days(ledger: DayLedger) -> list[date]:
    return sorted(d for d, m in ledger.marks().items() if m.status == "done")


def test_killed_mid_backfill_then_rerun_on_the_cluster_archives_every_day_exactly_once(
    settings: Settings,
    export: Export,
    cluster: DaskCluster,
    secret: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = S3ObjectStore.from_settings(settings)
    ledger = DayLedger.for_source(settings, export.path)
    out = tmp_path / "backfill.out"
    argv = [sys.executable, "-m", "infra.cli", "archive", "--since", FIRST.isoformat()]
    argv += ["--until", LAST.isoformat(), "--source", str(export.path), "--batch-size", "4"]
    env = cli_env(settings) | {"PREFECT_API_URL": _shared_prefect_api()}
    with out.open("wb") as sink:
        child = subprocess.Popen(argv, env=env, start_new_session=True, stdout=sink, stderr=sink)
    try:
        deadline = time.monotonic() + 240
        # Killed once the first day is done and the second is storing records.
        while not (_done_days(ledger) and len(list(record_versions(store))) > 2):
            assert child.poll() is None, out.read_text()
            assert time.monotonic() < deadline, "the backfill stored nothing in time"
            time.sleep(0.2)
        # The day in progress holds the catalog: a nightly run now is refused before any work.
        with pytest.raises(RunInProgressError):
            RunLock.acquire(settings.catalog_dir, run_id="nightly", now=datetime.now(UTC))
    finally:
        os.killpg(child.pid, signal.SIGKILL)  # the CLI and its workers, like a power cut
        child.wait()
    assert _done_days(ledger) == [FIRST]
    stored_before = dict(record_versions(store))
    assert 2 < len(stored_before) < _expected(export)
    printed = out.read_text()
    assert f"{FIRST}  done" in printed
    assert not [s for s in export.secrets if s in printed]  # counts only, no PHI

    on_cluster = cluster_settings(settings, cluster.address, secret)
    # A nightly run holding the catalog: with no wait the backfill stops, marking nothing. It is a
    # real run's lock, lease included: the killed backfill's bucket lease outlives it, and only a
    # run that finds the dead run's id in the lock file takes it over (then releases it).
    keys = open_keys(settings)
    held = RunLock.for_run(settings, "nightly", datetime.now(UTC), None, keys=keys)
    try:
        with pytest.raises(RunInProgressError):
            _backfill(on_cluster, export, monkeypatch, lock_wait_s=0)
        assert DayLedger.for_source(on_cluster, export.path).pending([LAST]) == [LAST]
        # A second backfill of the same source into the same archive is refused outright.
        now = datetime.now(UTC)
        other = RunLock.acquire(ledger.directory, run_id="backfill elsewhere", now=now)
        try:
            with pytest.raises(RunInProgressError, match="backfill elsewhere"):
                _backfill(on_cluster, export, monkeypatch, lock_wait_s=60)
        finally:
            other.release()
        # With a wait, the day runs once the other run ends (serialised, never side by side).
        from flows import backfill

        monkeypatch.setattr(backfill, "LOCK_POLL_S", 0.2)  # the wait is what is shown, not 2 s
        threading.Timer(1.0, held.release).start()
        waited = time.monotonic()
        result = _backfill(on_cluster, export, monkeypatch, lock_wait_s=60, batch_size=3)
        assert time.monotonic() - waited >= 1.0
    finally:
        held.release()
    assert (result["skipped"], result["ran"], result["failed_days"]) == (1, 1, {})
    redone = result["archived"] + result["adopted"] + result["already_archived"]
    assert redone == len(export.summary.in_window)
    assert result["adopted"] + result["already_archived"] >= len(stored_before) - 2
    rows = _exactly_once(settings, export)
    assert all(stored_before[k] == v for k, v in record_versions(store) if k in stored_before)
    assert len({r["run_id"] for r in rows}) == 2  # one manifest per day, one writer
    marks = ledger.marks()
    assert (marks[FIRST].status, marks[LAST].status) == ("done", "done")
    assert marks[FIRST].counts["cluster_workers"] == 0  # the CLI's own process pool
    assert marks[LAST].counts["cluster_workers"] >= 1  # the day's batches went to the cluster

    # Everything done: a rerun runs no day and catalogues nothing.
    again = _backfill(settings, export, monkeypatch)
    assert (again["skipped"], again["ran"]) == (2, 0)
    assert len(Catalog.open(settings.catalog_dir).rows().to_pylist()) == len(rows)

"""kill -9 in the middle of a run, then rerun: every valid encounter ends archived exactly once
and the catalog matches the bucket."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from archive.catalog import Catalog
from archive.store import S3ObjectStore
from infra.settings import AppSettings as Settings
from tests.support.nightly import DAY, cli_env, make_export, record_versions, run_once

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_killed_mid_batch_then_rerun_archives_everything_exactly_once(
    settings: Settings, tmp_path: Path
) -> None:
    export = make_export(tmp_path / "export", encounters=40, seed=23)
    store = S3ObjectStore.from_settings(settings)
    argv = [
        sys.executable,
        "-m",
        "infra.cli",
        "archive",
        "--since",
        DAY.isoformat(),
        "--source",
        str(export.path),
        "--batch-size",
        "4",
    ]
    child = subprocess.Popen(
        argv,
        env=cli_env(settings),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while len(list(record_versions(store))) < 6:
            assert child.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "the run stored nothing in time"
            time.sleep(0.2)
    finally:
        os.killpg(child.pid, signal.SIGKILL)  # the process and its workers, like a power cut
        child.wait()
    stored_before = dict(record_versions(store))
    assert 6 <= len(stored_before) < len(export.summary.in_window)

    summary = run_once(settings, export)
    versions = list(record_versions(store))
    keys = [k for k, _ in versions]
    assert len(keys) == len(set(keys)) == len(export.summary.in_window)  # once each
    assert all(stored_before[k] == v for k, v in versions if k in stored_before)  # kept
    assert summary.adopted >= len(stored_before) - summary.already_archived
    rows = Catalog.open(settings.catalog_dir).rows().to_pylist()
    assert sorted(r["encounter_id"] for r in rows) == sorted(export.summary.in_window)
    assert {(r["object_key"], r["version_id"]) for r in rows} == set(versions)

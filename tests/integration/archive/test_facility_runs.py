"""Facilities' archive runs on the real stack: two runs of one facility at once, from two
"machines" (two catalog directories, one bucket), are one run and one refusal before any work;
two facilities' runs in parallel processes, on one machine, both complete into one chain."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from archive.audit import AuditLog
from archive.catalog import Catalog
from archive.core.errors import RunInProgressError
from archive.pipeline import ArchiveRun, RunOptions
from archive.store import S3ObjectStore
from infra.cli.commands.lease import lease_group
from infra.settings import AppSettings as Settings
from retention.classifier import PolicyClassifier
from tests.support.catalog_writer import sealed_store
from tests.support.evidence_crash import child_env
from tests.support.facility_run import facility_counts, run_facility
from tests.support.nightly import Export, make_export


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    return make_export(tmp_path_factory.mktemp("export"), encounters=3, seed=1, bad_share=0)


def _two_facilities(export: Export) -> tuple[str, str]:
    counts = facility_counts(export.path)
    assert len(counts) >= 2, counts  # the seed spreads the encounters over facilities
    first, second = sorted(counts)[:2]
    return first, second


def _start(settings: Settings, export: Export, facility: str) -> ArchiveRun:
    options = RunOptions.create(
        settings, window=export.window, source=export.path, now=datetime.now(UTC), facility=facility
    )
    return ArchiveRun.start(settings, options, classifier=PolicyClassifier.from_settings(settings))


def test_a_second_run_of_a_facility_on_another_machine_is_refused_before_any_work(
    settings: Settings, export: Export, tmp_path: Path
) -> None:
    facility, _ = _two_facilities(export)
    other_machine = settings.model_copy(
        update={"catalog": settings.catalog.model_copy(update={"catalog_dir": tmp_path / "m2"})}
    )
    store = S3ObjectStore.from_settings(settings)
    with _start(settings, export, facility) as first:
        before = sorted(
            (v.key, v.version_id) for v in store.list_versions("") if "lease" not in v.key
        )
        with pytest.raises(
            RunInProgressError, match=f"facility {facility} .*{first.options.run_id}"
        ):
            _start(other_machine, export, facility)
        after = sorted(
            (v.key, v.version_id) for v in store.list_versions("") if "lease" not in v.key
        )
        assert after == before  # nothing stored, catalogued or audited by the refused run
        assert not (tmp_path / "m2" / "manifests").exists()
        # What the refused operator can look up: who holds the facility (read-only, unsealed).
        shown = CliRunner().invoke(lease_group, ["show", "--facility", facility], obj=settings)
        assert shown.exit_code == 0, shown.output
        assert shown.output.split()[:2] == [facility, "held"]
        assert f"run {first.options.run_id} on " in shown.output
    with _start(other_machine, export, facility) as second:  # released: the next one runs
        assert second.options.facility == facility


def test_two_facilities_archive_in_parallel_into_one_chain(
    settings: Settings, export: Export
) -> None:
    counts = facility_counts(export.path)
    first, second = _two_facilities(export)
    argv = [sys.executable, "-m", "tests.support.facility_run", str(export.path), second]
    env = child_env(settings)
    child = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:  # the first facility here, the second in the child: two processes, one machine
        summaries = [run_facility(settings, export.path, first)]
    finally:
        out, err = child.communicate(timeout=300)
    assert child.returncode == 0, err.decode()[-3000:]
    summaries.append(json.loads(out.decode().splitlines()[-1]))
    for code, summary in zip((first, second), summaries, strict=True):
        assert summary["archived"] == counts[code]
        assert summary["other_facility"] == sum(counts.values()) - counts[code]
    truth = Catalog.rebuild(settings.catalog_dir.with_name("truth"), sealed_store(settings))
    rows = truth.rows()
    assert sorted(rows.column("facility").to_pylist()) == sorted(
        [first] * counts[first] + [second] * counts[second]
    )
    ids = rows.column("encounter_id").to_pylist()
    assert len(ids) == len(set(ids))
    assert len(truth.manifests) == 2
    assert Catalog.open(settings.catalog_dir).manifests == truth.manifests
    audit = AuditLog.for_settings(settings, S3ObjectStore.from_settings(settings))
    assert audit.verify_chain().passed  # both runs' events, one chain on this machine

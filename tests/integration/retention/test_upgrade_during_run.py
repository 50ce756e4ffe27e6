"""A retention upgrade tried while an archive run is between its catalog append and its evidence
records. The run writes its fresh records' evidence locked to the date it promised at the hold,
so an upgrade that found those records in the catalog (and no evidence record yet to extend) left
the evidence shorter than the record (verification: ``evidence.lock``; seen before the upgrade
took the run lock). Now it is refused while the run holds the lock, and applied after it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from archive.pipeline import ArchiveRun, RunOptions
from infra.settings import AppSettings as Settings
from retention.classifier import PolicyClassifier
from retention.errors import RunsInProgressError
from retention.parts import RetentionParts
from retention.upgrades import ApplyResult, apply_upgrade, plan_upgrade
from tests.integration.retention.test_retention_upgrades import _evidence_check, _evidence_lock
from tests.support.nightly import make_export

pytestmark = pytest.mark.integration


def _upgrade(settings: Settings) -> tuple[dict[str, Any], datetime, ApplyResult]:
    """A death recorded for the shortest-kept record, planned and applied as `retention apply`
    does: under the run lock."""
    parts = RetentionParts.open(settings)
    with parts.runs_excluded("retention apply"):
        return _plan_apply(parts)


def _plan_apply(parts: RetentionParts) -> tuple[dict[str, Any], datetime, ApplyResult]:
    row = min(parts.catalog.rows().to_pylist(), key=lambda r: r["retain_until"])
    facts = {row["encounter_id"]: {"deceased": True, "discharge_disposition": "exp"}}
    plan = plan_upgrade(
        parts.catalog.rows(), parts.register, policy=parts.policy, facts=facts, tz=parts.tz
    )
    [change] = plan.extensions
    result = apply_upgrade(
        plan, register=parts.register, audit=parts.audit, by="lan", now=datetime.now(UTC)
    )
    return row, change.new_until, result


def test_an_upgrade_cannot_land_between_a_runs_catalog_append_and_its_evidence(
    settings: Settings, tmp_path: Path
) -> None:
    export = make_export(tmp_path / "export", encounters=4, seed=23, bad_share=0.0)
    options = RunOptions.create(
        settings, window=export.window, source=export.path, now=datetime.now(UTC), batch_size=8
    )
    refused: list[RunsInProgressError] = []

    def upgrade_now(step: str) -> None:
        if step == "tree-built" and not refused:  # catalogued, evidence not yet written
            with pytest.raises(RunsInProgressError) as caught:
                _upgrade(settings)
            refused.append(caught.value)

    classifier = PolicyClassifier.from_settings(settings)
    with ArchiveRun.start(settings, options, classifier=classifier) as run:
        run.evidence_step = upgrade_now
        for batch in run.batches():
            run.archive_batch(batch)
        run.store_quarantine()
        assert run.finish().evidence_written
    [error] = refused
    assert error.exit_code == 75
    assert "retry after the run" in str(error).lower()
    row, until, result = _upgrade(settings)  # the run over: the officer's retry
    assert (result.extended_records, result.extended_evidence) == (1, 1)
    assert _evidence_check(settings, row, until) == "evidence.ok"
    assert _evidence_lock(RetentionParts.open(settings).store, row) >= until

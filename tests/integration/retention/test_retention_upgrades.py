"""Upgrades on the real stack: a death recorded after archiving extends the lock 10 -> 30 years on
every version and on its evidence record (also one a TSA outage left pending, locked later by the
next run); a shorter rule in a new policy leaves every lock as it is; an upgrade waits for no
archive run: it is refused while one holds the run lock."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from archive.catalog import CatalogRow
from archive.pipeline import ArchiveRun, RunOptions
from archive.pipeline.evidence_current import current_evidence
from archive.pipeline.evidence_floor import newest_token, read_floor
from archive.store import COMPLIANCE, S3ObjectStore, SealedStore, evidence_key
from infra.settings import AppSettings as Settings
from retention.classifier import PolicyClassifier
from retention.errors import RunsInProgressError
from retention.parts import RetentionParts
from retention.policy import LockAction, classification_for, load_policy, retain_until
from retention.upgrades import (
    ApplyResult,
    apply_upgrade,
    facts_from_export,
    load_facts_file,
    plan_upgrade,
)
from tests.support.nightly import DEAD_TSA, make_export, run_once
from tests.support.paths import REPO
from tests.support.retention import RecordingStore, lock_of

pytestmark = pytest.mark.integration

SHIPPED = REPO / "retention" / "policy.toml"


@pytest.fixture
def archived(settings: Settings, tmp_path: Path) -> RetentionParts:
    summary = run_once(settings, make_export(tmp_path / "export", encounters=16, seed=11))
    assert summary.archived > 0
    return RetentionParts.open(settings)


def _ordinary(parts: RetentionParts) -> dict[str, Any]:
    rows = [r for r in parts.catalog.rows().to_pylist() if r["retention_class"] == "ordinary"]
    assert rows, "the sample window has no ordinary record"
    return dict(rows[0])


def test_a_death_recorded_after_archiving_extends_the_lock_to_30_years(
    archived: RetentionParts, settings: Settings, tmp_path: Path
) -> None:
    row = _ordinary(archived)
    eid, key = str(row["encounter_id"]), str(row["object_key"])
    [(before, _)] = lock_of(archived.store, key)
    assert before == row["retain_until"]
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps({eid: {"deceased": True, "discharge_disposition": "exp"}}))

    plan = plan_upgrade(
        archived.catalog.rows(),
        archived.register,
        policy=archived.policy,
        facts=load_facts_file(facts),
        tz=archived.tz,
    )
    [change] = plan.extensions
    death = classification_for(archived.policy, "death")
    expected = retain_until(death, discharged_at=row["discharged_at"])
    assert (change.encounter_id, change.old_class, change.new_class) == (eid, "ordinary", "death")
    assert change.new_until == expected
    assert before is not None
    assert expected.year - before.year == 20
    summary = {s.class_id: s for s in plan.by_class()}["death"]
    assert (summary.extend, summary.earliest_new, summary.latest_new) == (1, expected, expected)
    assert lock_of(archived.store, key) == [(before, False)]  # plan touches nothing

    store = RecordingStore(archived.store)  # type: ignore[arg-type]
    parts = RetentionParts.open(archived.settings, store=store)
    result = apply_upgrade(
        plan, register=parts.register, audit=parts.audit, by="lan", now=datetime.now(UTC)
    )
    assert (result.extended_records, result.extended_versions) == (1, 1)
    assert (result.extended_evidence, result.evidence_pending) == (1, 0)
    ers = evidence_key(object_key=key, version_id=str(row["version_id"]))
    assert {c[1] for c in store.calls if c[0] == "extend_retention"} == {key, ers}
    assert lock_of(archived.store, key) == [(expected, False)]
    assert parts.register.lock_changes()[eid] == ("death", expected)
    again = plan_upgrade(
        parts.catalog.rows(),
        parts.register,
        policy=parts.policy,
        facts=load_facts_file(facts),
        tz=parts.tz,
    )
    assert again.extensions == ()  # applied once; the register now knows the new date
    [event] = parts.audit.show(action="retention.extend")
    assert ("encounter", eid) in event.entities
    assert parts.audit.verify_chain().passed
    # The record's evidence record is locked as long as the record now: verification (which
    # wants evidence locked at least as long as the record) passes on the upgraded record.
    assert _evidence_check(settings, row, expected) == "evidence.ok"
    assert _evidence_lock(archived.store, row) >= expected
    # ... and so will its next renewal: the floor on its newest token, in the real bucket
    meta = parts.register.meta_store
    assert isinstance(meta, SealedStore)
    current = current_evidence(meta, object_key=key, version_id=str(row["version_id"]))
    assert current is not None
    token = newest_token(current)
    assert token is not None
    assert read_floor(archived.store, token) == expected


def _evidence_lock(store: Any, row: dict[str, Any]) -> datetime:
    head = store.latest(evidence_key(object_key=row["object_key"], version_id=row["version_id"]))
    assert head is not None, "the record has no evidence record"
    assert head.lock.mode == COMPLIANCE
    assert head.lock.retain_until is not None
    until: datetime = head.lock.retain_until
    return until


def _evidence_check(settings: Settings, row: dict[str, Any], until: datetime) -> str:
    """Verification's ``evidence`` check on the record as it is after the upgrade."""
    from verification.checks import EVIDENCE, LOCK
    from verification.config import HoldSet, VerificationSettings
    from verification.verifier import Verifier
    from verification.worker import environment

    env = environment(settings, VerificationSettings(workers=1), HoldSet())
    upgraded = replace(CatalogRow.from_dict(row), retain_until=until)
    result = Verifier.create(checks=(LOCK, EVIDENCE), env=env).verify(
        upgraded, now=datetime.now(UTC)
    )
    codes = {c.check: c.reason_code for c in result.checks}
    assert codes["lock"] == "lock.ok", result.checks
    return codes["evidence"]


def test_an_upgrade_while_evidence_is_pending_reaches_the_record_the_next_run_writes(
    settings: Settings, tmp_path: Path
) -> None:
    # The TSA is down the night of archiving: records archived, their evidence pending (nothing
    # to extend). The upgrade extends the records; the next night writes the evidence records
    # and must lock them until the upgraded date, not the one promised before the upgrade.
    export = make_export(tmp_path / "export", encounters=4, seed=23, bad_share=0.0)
    assert run_once(settings, export, evidence_tsa=DEAD_TSA).evidence_pending
    parts = RetentionParts.open(settings)
    row = min(parts.catalog.rows().to_pylist(), key=lambda r: r["retain_until"])
    assert (
        S3ObjectStore.from_settings(settings).latest(
            evidence_key(object_key=row["object_key"], version_id=row["version_id"])
        )
        is None
    )
    facts = {row["encounter_id"]: {"deceased": True, "discharge_disposition": "exp"}}
    plan = plan_upgrade(
        parts.catalog.rows(), parts.register, policy=parts.policy, facts=facts, tz=parts.tz
    )
    [change] = plan.extensions
    apply_upgrade(plan, register=parts.register, audit=parts.audit, by="lan", now=datetime.now(UTC))

    assert run_once(settings, export).evidence_written
    assert _evidence_check(settings, row, change.new_until) == "evidence.ok"
    assert _evidence_lock(parts.store, row) >= change.new_until


def test_a_shorter_rule_leaves_every_lock_unchanged(
    archived: RetentionParts, tmp_path: Path
) -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    shorter = text.replace("[classes.ordinary]\nyears = 10", "[classes.ordinary]\nyears = 5")
    assert shorter != text
    path = tmp_path / "policy-v2.toml"
    path.write_text(shorter.replace("version = 1", "version = 2", 1), encoding="utf-8")
    before = {
        r["object_key"]: lock_of(archived.store, r["object_key"])
        for r in archived.catalog.rows().to_pylist()
    }

    plan = plan_upgrade(
        archived.catalog.rows(),
        archived.register,
        policy=load_policy(path),
        facts={},
        tz=archived.tz,
    )
    ordinary = {s.class_id: s for s in plan.by_class()}["ordinary"]
    assert ordinary.keep_longer == ordinary.records > 0
    assert plan.extensions == ()
    assert {c.action for c in plan.changes} <= {LockAction.KEEP_LONGER, LockAction.UNCHANGED}
    store = RecordingStore(archived.store)  # type: ignore[arg-type]
    parts = RetentionParts.open(archived.settings, store=store)
    result = apply_upgrade(
        plan, register=parts.register, audit=parts.audit, by="lan", now=datetime.now(UTC)
    )
    assert result.extended_records == 0
    assert [c for c in store.calls if c[0] == "extend_retention"] == []
    after = {k: lock_of(archived.store, k) for k in before}
    assert after == before
    [event] = parts.audit.show(action="retention.extend")
    assert event.detail["shorter_rule_unchanged"] == ordinary.records


def test_facts_read_again_from_the_export_change_nothing(
    archived: RetentionParts, tmp_path: Path
) -> None:
    facts = facts_from_export(tmp_path / "export")
    catalogued = {r["encounter_id"] for r in archived.catalog.rows().to_pylist()}
    assert catalogued <= set(facts)
    plan = plan_upgrade(
        archived.catalog.rows(),
        archived.register,
        policy=archived.policy,
        facts=facts,
        tz=archived.tz,
    )
    assert len(plan.changes) == len(catalogued)
    assert {c.action for c in plan.changes} == {LockAction.UNCHANGED}


# --- an upgrade tried while a run is between its catalog append and its evidence records ------
# The run writes its fresh records' evidence locked to the date it promised at the hold, so an
# upgrade that found those records in the catalog (and no evidence record yet to extend) left the
# evidence shorter than the record (``evidence.lock``; seen before the upgrade took the run lock).
# Now it is refused while the run holds the lock, and applied after it.


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

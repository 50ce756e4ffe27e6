"""An encounter amended in the hospital system after it was archived is archived again, as a new
version beside the first (both kept, each under its own create-once key), never counted as
"already archived" with its new data silently left out."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from archive import wiring
from archive.catalog import Catalog
from archive.pipeline.classifier import RetentionDecision
from archive.render import extract_embedded_data
from archive.seal import ObjectIdentity
from archive.store import S3ObjectStore, withdraw
from infra.settings import AppSettings as Settings
from retention.classifier import PolicyClassifier
from retention.errors import RetentionError
from retention.parts import RetentionParts
from retention.upgrades import apply_upgrade, plan_upgrade
from tests.support.chains import forge_next_segment
from tests.support.nightly import (
    EndedClassifier,
    Export,
    LockedAs,
    make_export,
    record_versions,
    run_once,
)
from tests.support.retention import lock_of, wait_until

pytestmark = pytest.mark.integration


def _amend(export: Export, dst: Path, encounter_id: str) -> Export:
    """A re-export in which one encounter's admission time was corrected."""
    shutil.copytree(export.path, dst)
    path = dst / "Encounter.ndjson"
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        try:
            encounter = json.loads(line)
        except ValueError:
            continue
        if isinstance(encounter, dict) and encounter.get("id") == encounter_id:
            start = datetime.fromisoformat(encounter["period"]["start"])
            encounter["period"]["start"] = (start - timedelta(hours=2)).isoformat()
            lines[i] = json.dumps(encounter, ensure_ascii=False)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return replace(export, path=dst)


def test_an_amended_encounter_is_archived_again_as_a_new_version(
    settings: Settings, tmp_path: Path
) -> None:
    export = make_export(tmp_path / "a", encounters=12, seed=23)
    eid, brief = sorted(export.summary.in_window)[:2]
    # The first night, ``eid``'s data put it in a longer class than its corrected data will (a
    # death entered in error, say), and ``brief`` is locked only seconds: its period really
    # ends during this test.
    briefly = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=10)  # > a first run
    longer = RetentionDecision("death", datetime(2061, 12, 31, 17, tzinfo=UTC))
    locks = {eid: longer, brief: RetentionDecision("ordinary", briefly)}
    first = run_once(
        settings, export, classifier=LockedAs(PolicyClassifier.from_settings(settings), locks)
    )
    amended = _amend(export, tmp_path / "b", eid)

    again = run_once(settings, amended)
    assert (again.amended, again.archived) == (1, 1)
    assert again.already_archived == first.archived - 1

    rows = [
        r for r in Catalog.open(settings.catalog_dir).rows().to_pylist() if r["encounter_id"] == eid
    ]
    assert len(rows) == 2
    original, newer = sorted(rows, key=lambda r: r["signed_at"])
    assert original["object_key"] != newer["object_key"]  # both kept, each create-once
    assert original["data_sha256"] != newer["data_sha256"]
    store = S3ObjectStore.from_settings(settings)
    # The correction classifies shorter, but the record's retention is the longest any of its
    # versions required: it is locked as long as the first, under the first's class.
    assert (newer["retention_class"], newer["retain_until"]) == ("death", longer.retain_until)
    assert lock_of(store, newer["object_key"]) == [(longer.retain_until, False)]
    assert {original["object_key"], newer["object_key"]} <= dict(record_versions(store)).keys()
    for row in (original, newer):  # each version holds its own data, signed
        pdf = withdraw(
            identity=ObjectIdentity(row["bucket"], row["object_key"], eid),
            version_id=row["version_id"],
            store=store,
            keys=wiring.open_keyring(settings),
            settings=settings.seal,
        )
        assert hashlib.sha256(extract_embedded_data(pdf)).hexdigest() == row["data_sha256"]

    third = run_once(settings, amended)  # the amendment is now the newest version
    assert (third.amended, third.archived, third.adopted) == (0, 0, 0)
    back = run_once(settings, export)  # and the old data again is a change too, kept apart
    assert (back.amended, back.archived) == (1, 1)
    keys = {
        r["object_key"]
        for r in Catalog.open(settings.catalog_dir).rows().to_pylist()
        if r["encounter_id"] == eid
    }
    assert len(keys) == 3

    # Long after: every period has ended. The catalogued encounters are still "already
    # archived" (compared before any retention decision), never quarantined or failed.
    ended = EndedClassifier(PolicyClassifier.from_settings(settings))
    late = run_once(settings, export, classifier=ended)
    assert (late.archived, late.amended, late.failed) == (0, 0, {})
    assert late.already_archived == first.archived
    assert "retention-ended" not in late.quarantined

    # An amendment after the period ended is not archived as a new version (Object Lock refuses
    # a retain-until in the past: it failed with store.error on every run): it is quarantined
    # as a disposition matter, once, and the other encounters are still "already archived".
    # (``eid``'s versions are still locked: its amendments would be kept as long.)
    wait_until(briefly)
    amended = _amend(export, tmp_path / "c", brief)
    ended_change = run_once(settings, amended, classifier=ended)
    assert (ended_change.archived, ended_change.amended, ended_change.failed) == (0, 0, {})
    assert ended_change.already_archived == first.archived - 1
    assert ended_change.quarantined["retention-ended"] == 1
    assert ended_change.quarantine_new == 1
    rerun = run_once(settings, amended, classifier=ended)
    assert (rerun.failed, rerun.quarantined["retention-ended"], rerun.quarantine_new) == ({}, 1, 0)

    # The records department keeps the record longer (a death recorded since: an upgrade to 30
    # years, in the retention register): the same amendment is now archived, locked until the
    # extension, though its class's period has ended.
    parts = RetentionParts.open(settings)
    facts = {brief: {"deceased": True, "discharge_disposition": "exp"}}
    plan = plan_upgrade(
        parts.catalog.rows(), parts.register, policy=parts.policy, facts=facts, tz=parts.tz
    )
    assert {c.encounter_id for c in plan.extensions} == {brief}
    apply_upgrade(plan, register=parts.register, audit=parts.audit, by="lan", now=datetime.now(UTC))
    [(_, until)] = {(c.new_class, c.new_until) for c in plan.extensions}
    kept = EndedClassifier(PolicyClassifier.from_settings(settings))
    upgraded = run_once(settings, amended, classifier=kept)
    assert (upgraded.archived, upgraded.amended, upgraded.failed) == (1, 1, {})
    assert "retention-ended" not in upgraded.quarantined
    newest = max(
        (
            r
            for r in Catalog.open(settings.catalog_dir).rows().to_pylist()
            if r["encounter_id"] == brief
        ),
        key=lambda r: r["signed_at"],
    )
    assert (newest["retention_class"], newest["retain_until"]) == ("death", until)
    assert lock_of(store, newest["object_key"]) == [(until, False)]

    # An extension chained onto the register by hand (no keyring) gives nothing: the register
    # does not verify, and no run starts on it.
    forged = {"type": "lock.extended", "encounter_id": "E-FORGED", "new_class": "death"}
    forge_next_segment(
        settings.retention_dir, {**forged, "new_until": "2090-01-01T00:00:00+00:00"}, move_head=True
    )
    with pytest.raises(RetentionError, match="does not verify"):
        PolicyClassifier.from_settings(settings)


def test_records_whose_period_ended_before_they_reached_the_archive_are_quarantined(
    settings: Settings, tmp_path: Path
) -> None:
    """A backfill over a day twelve years back: the shipped policy's ten-year records are past
    their period, and a lock date in the past is refused by Object Lock — each such record
    used to fail with store.error on every run. Longer classes are archived as ever."""
    export = make_export(
        tmp_path / "old", encounters=16, seed=41, bad_share=0.0, day=date(2014, 11, 22)
    )
    first = run_once(settings, export)
    assert first.failed == {}
    ended = first.quarantined.get("retention-ended", 0)
    assert ended >= 1
    assert first.archived + ended == first.collected
    again = run_once(settings, export)  # content-addressed entries: nothing new, nothing failed
    assert again.failed == {}
    assert again.quarantined.get("retention-ended", 0) == ended
    assert again.archived == 0

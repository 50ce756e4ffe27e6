"""Regression: catalog copies, audit segments, the retention register and disposition proposals
reached the bucket in clear, so bucket read access revealed encounter ids beside object keys,
pseudonyms, classes, staff names and cases. After every kind of write (a nightly run, a
verification run, a hold, an audit flush, a disposition proposal, a catalog sync) every object in
the bucket must be a sealed envelope, and none may hold any of those in clear."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archive import wiring
from archive.audit import AuditEvent, AuditLog
from archive.catalog import Catalog, manifest_lock, table_to_rows
from archive.seal import MAGIC
from archive.store import RECORDS_PREFIX, S3ObjectStore
from infra.settings import AppSettings as Settings
from retention import Actor
from retention.holds import HoldScope, place_hold
from retention.parts import RetentionParts
from tests.support.nightly import make_export, run_once
from tests.support.retention import Rec, archive_records, wait_until
from verification.config import VerificationSettings
from verification.results import Status
from verification.run import RunPlan, VerificationRun
from verification.select import Mode, Selection

pytestmark = pytest.mark.integration

STAFF = "Trần Văn Kiểm"
CASE = "TA-99/2026-KIEM"


def _verify(settings: Settings, tmp_path: Path) -> Status:
    vsettings = VerificationSettings(output_dir=tmp_path / "verification", workers=1)
    plan = RunPlan.create(
        settings, vsettings, selection=Selection(mode=Mode.FULL), now=datetime.now(UTC)
    )
    with VerificationRun.start(settings, vsettings, plan) as run:
        for batch in run.batches():
            run.verify_batch(batch)
        return run.finish().status


def test_no_metadata_reaches_the_bucket_in_clear(settings: Settings, tmp_path: Path) -> None:
    export = make_export(tmp_path / "export", encounters=24, seed=23)
    summary = run_once(settings, export)
    assert summary.archived > 10
    assert _verify(settings, tmp_path) is Status.PASSED

    now = datetime.now(UTC).replace(microsecond=0)
    soon = now + timedelta(seconds=3)
    archive_records(settings, [Rec("E-DISP-KIEM-1", "BN-KIEM", "mental", now, soon)])
    parts = RetentionParts.open(settings)
    catalogued = table_to_rows(parts.catalog.rows())
    place_hold(
        HoldScope(encounter_ids=(catalogued[0].encounter_id,)),
        case_ref=CASE,
        reason="court order",
        by=Actor(STAFF, "records-officer"),
        catalog_rows=parts.catalog.rows(),
        register=parts.register,
        audit=parts.audit,
        now=now,
        tz=parts.tz,
    )
    log = AuditLog.for_settings(settings, wiring.open_store(settings))
    log.append(
        AuditEvent(
            actor=STAFF,
            role="records-officer",
            action="hold.review",
            recorded=now,
            entities=(("case", CASE),),
            reason=CASE,
        )
    )
    assert log.flush() == 1
    wait_until(soon)
    assert parts.propose(by=Actor(STAFF, "records-officer"), now=datetime.now(UTC)) is not None
    until = manifest_lock(settings, datetime.now(UTC))
    Catalog.open(settings.catalog_dir).sync(wiring.open_meta_store(settings), retain_until=until)
    assert parts.audit.verify_chain().passed
    assert parts.register.verify().passed

    rows = table_to_rows(Catalog.open(settings.catalog_dir).rows())
    needles = {STAFF.encode(), CASE.encode(), b"court order", b"E-DISP-KIEM-1"}
    for row in rows:
        needles |= {
            row.encounter_id.encode(),
            row.patient_pseudonym.encode(),
            row.retention_class.encode(),
            row.patient_pseudonym[3:27].encode(),
        }
    assert b"mental" in needles
    store = S3ObjectStore.from_settings(settings)
    versions = [v for v in store.list_versions() if not v.is_delete_marker]
    prefixes = {v.key.split("/")[0] for v in versions}
    assert prefixes >= {"records", "catalog", "audit", "retention"}
    for version in versions:
        assert not any(row.encounter_id in version.key for row in rows), version.key
        body = store.get(version.key, version_id=version.version_id)
        assert body.startswith(MAGIC), f"{version.key} is not a sealed envelope"
        if not version.key.startswith(RECORDS_PREFIX):  # short: no chance hit on 4 bytes
            assert b"PAR1" not in body, f"{version.key} holds a Parquet file in clear"
        for needle in needles:
            assert needle not in body, f"{version.key} holds {needle[:12]!r}... in clear"

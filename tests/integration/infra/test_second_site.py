"""The second site on the real stack: two SeaweedFS (each its own ports, data directory, security
config, Object Lock bucket), every object written to both, a divergence found by verification,
and a site wiped entirely and repaired from the other without any key."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archive.audit import AuditLog
from archive.catalog import Catalog
from archive.core.errors import ReplicaError
from archive.store import UNREPLICATED_PREFIXES, S3ObjectStore
from infra import seaweed, stack
from infra.repair import audit_repair, repair_site
from infra.settings import AppSettings as Settings
from retention.disposition import approve
from retention.minutes import embedded_listing, read_minutes
from retention.parts import RetentionParts
from retention.people import Actor
from tests.support.nightly import Export, make_export, run_once
from tests.support.retention import Rec, archive_records, wait_until
from tests.support.sites import (
    archive_holding_one,
    not_passed,
    repair_without_keys,
    two_site_settings,
    verify_full,
)
from verification.config import HoldSet, VerificationSettings
from verification.run import RunPlan, VerificationRun
from verification.select import Mode, Selection

ENCOUNTERS = 16
LAN, HEAD = Actor("lan", "records-officer"), Actor("director.binh", "facility-head")


@pytest.fixture(scope="module")
def dual(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The session stack plus a replica site, started by `stack up`; a bucket of our own."""
    catalog_dir = tmp_path_factory.mktemp("dual") / "catalog"
    settings = two_site_settings(stack_settings, bucket="second-site", catalog_dir=catalog_dir)
    S3ObjectStore.from_settings(settings).create_locked_bucket()
    try:
        rows = {r.name: r for r in stack.up(settings)}
        assert rows["seaweedfs-replica"].healthy, rows["seaweedfs-replica"].detail
        yield settings
    finally:
        seaweed.stop(settings, "replica")


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    return make_export(tmp_path_factory.mktemp("dual-export"), encounters=ENCOUNTERS, seed=23)


def test_a_site_lost_entirely_is_repaired_from_the_other_without_a_key(
    dual: Settings, export: Export, tmp_path: Path
) -> None:
    rows, held, holds = archive_holding_one(dual, export)
    clean = verify_full(dual, tmp_path / "before", holds)
    assert not_passed(clean) == {}
    assert "replica" in {c.check for c in clean.archive_checks}

    # The replica site loses everything: process stopped (while a verification runs), data
    # directory deleted. The verification finishes, says so, and audits at the primary.
    impatient = dual.model_copy(
        update={"replica": dual.replica.model_copy(update={"max_attempts": 2})}
    )
    vsettings = VerificationSettings(output_dir=tmp_path / "down", workers=1)
    run_plan = RunPlan.create(
        impatient, vsettings, selection=Selection(mode=Mode.FULL), now=datetime.now(UTC)
    )
    with VerificationRun.start(
        impatient, vsettings, run_plan, holds=holds, keep_results=True
    ) as run:
        seaweed.stop(dual, "replica")
        with pytest.raises(ReplicaError):  # a site down: the run refuses before any record
            run_once(impatient, export)  # after 2 attempts, not botocore's 8 backed-off ones
        assert len(Catalog.open(dual.catalog_dir).rows()) == len(rows)
        for batch in run.batches():
            run.verify_batch(batch)
        down = run.finish()
    assert not_passed(down) == {"replica": "replica.unreachable"}
    assert "replica.unreachable" in {f.reason_code for f in down.findings}
    assert down.report_path is not None
    assert down.report_path.exists()
    audited = AuditLog.for_settings(dual, S3ObjectStore.from_settings(dual)).show(
        action="verify.run"
    )
    assert ("run", down.run_id) in audited[-1].entities
    shutil.rmtree(dual.replica_dir)
    stack.up(dual)  # a new, empty site: the bucket is created again with Object Lock

    lost = verify_full(dual, tmp_path / "lost", holds)
    assert not_passed(lost) == {"replica": "replica.missing"}
    assert {f.reason_code for f in lost.findings} == {"replica.missing"}

    plan = repair_site(dual, site="replica", plan_only=True)
    assert plan.ok
    report = repair_without_keys(dual, "replica")  # no key anywhere: sealed bytes copied
    assert set(report.copied) == set(plan.copied)
    # Everything the site held comes back: records, evidence records and the evidence stage's
    # state, sealed manifests, audit segments (the down-time verification's among them; the
    # segment of the verification run after the loss was written to both sites).
    live = {
        v.key
        for v in S3ObjectStore.from_settings(dual).list_versions("")
        if v.is_latest and not v.is_delete_marker and not v.key.startswith(UNREPLICATED_PREFIXES)
    }
    at_replica = S3ObjectStore.from_settings(dual, site="replica")
    assert set(report.copied) <= live
    assert [k for k in sorted(live) if at_replica.latest(k) is None] == []
    assert len(live - set(report.copied)) == 1  # that one audit segment
    assert {r.object_key for r in rows} <= set(report.copied)
    kinds = {"/".join(k.split("/")[:3]) for k in report.copied}
    assert {"evidence/v1/records", "evidence/v1/trees", "evidence/v1/done"} <= kinds, kinds
    assert {"catalog/sealed/v1", "audit/sealed/v1"} <= kinds, kinds
    assert report.held == (held.object_key,)
    audit_repair(dual, report, site="replica")

    repaired = verify_full(dual, tmp_path / "repaired", holds)
    assert not_passed(repaired) == {}
    again = _cli(dual, "repair", "--plan")
    assert again.returncode == 0, again.stderr
    assert "would restore 0 (0 bytes)" in again.stdout
    primary = _cli(dual, "repair", "--site", "primary")  # it holds everything: a no-op
    assert primary.returncode == 0, primary.stderr
    assert "restored 0 (0 bytes)" in primary.stdout
    assert "primary: 0 catalogued version(s) re-homed" in primary.stdout
    copy = S3ObjectStore.from_settings(dual, site="replica").latest(held.object_key)
    assert copy is not None
    assert copy.lock.legal_hold
    assert copy.lock.retain_until is not None
    assert copy.lock.retain_until >= held.retain_until


def test_the_demo_step_loses_the_replica_and_repairs_it(
    dual: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from infra.demo_replica import show_second_site

    records = [v for v in S3ObjectStore.from_settings(dual).list_versions("records/")]
    show_second_site(dual)
    out = capsys.readouterr().out
    n = len([v for v in records if v.is_latest and not v.is_delete_marker])
    assert f"record objects: {n} at the primary, {n} at the replica" in out
    missing = re.search(r"replica check FAILED .*; (\d+) object\(s\) replica.missing", out)
    assert missing is not None, out
    assert int(missing.group(1)) > n  # records and every other object
    assert "refused 0;" in out
    assert re.search(rf"replica check passed .*; record objects at the replica: {n}\n", out), out


def test_verification_reports_each_kind_of_divergence(dual: Settings) -> None:
    from verification.replica import compare_sites

    primary = S3ObjectStore.from_settings(dual)
    replica = S3ObjectStore.from_settings(dual, site="replica")
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    primary.put_locked("quarantine/v1/zz/only-primary", b"a", retain_until=until)
    primary.put_locked("quarantine/v1/zz/differs", b"b", retain_until=until)
    replica.put_locked("quarantine/v1/zz/differs", b"B", retain_until=until)
    primary.put_locked("quarantine/v1/zz/unlocked", b"c", retain_until=until)
    replica.client.put_object(
        Bucket=replica.bucket,
        Key="quarantine/v1/zz/unlocked",
        Body=b"c",
        ChecksumSHA256=_b64sha(b"c"),
    )
    primary.put_locked("quarantine/v1/zz/shorter", b"d", retain_until=until)
    replica.put_locked("quarantine/v1/zz/shorter", b"d", retain_until=until - timedelta(hours=1))
    _, findings = compare_sites([], primary, replica, holds=HoldSet())
    got = {f.object_key.rsplit("/", 1)[1]: f.reason_code for f in findings}
    assert got == {
        "only-primary": "replica.missing",
        "differs": "replica.differs",
        "unlocked": "replica.unlocked",
        "shorter": "replica.unlocked",
    }


def test_disposition_deletes_at_both_sites_and_the_minutes_say_so(dual: Settings) -> None:
    # Locked for a few seconds only, but long enough to outlast signing on a loaded machine (3 s
    # did not, nor did 10 s at load 19: the PUT then carried a retain-until in the past and the
    # store refused it). The test waits for it anyway, so only a fast run pays the margin.
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=20)
    discharged = datetime(2014, 5, 1, 3, tzinfo=UTC)
    (row,) = archive_records(dual, [Rec("E-GONE", "P-GONE", "ordinary", discharged, soon)])
    primary = S3ObjectStore.from_settings(dual)
    replica = S3ObjectStore.from_settings(dual, site="replica")
    assert replica.latest(row.object_key) is not None
    wait_until(soon)
    parts = RetentionParts.open(dual)
    proposal = parts.propose(by=LAN, now=datetime.now(UTC))
    assert proposal is not None
    assert [i.encounter_id for i in proposal.items] == ["E-GONE"]
    outcome = approve(
        proposal.proposal_id,
        by=HEAD,
        catalog_rows=parts.catalog.rows(),
        register=parts.register,
        audit=parts.audit,
        policy=parts.policy,
        write_minutes=parts.minutes_writer(),
        now=datetime.now(UTC),
    )
    assert [i.encounter_id for i in outcome.destroyed] == ["E-GONE"]
    assert primary.latest(row.object_key) is None
    assert replica.latest(row.object_key) is None
    assert not [v for v in replica.list_versions(row.object_key) if not v.is_delete_marker]
    pdf = read_minutes(primary, parts.keyring(), dual, outcome.minutes, proposal.proposal_id)
    listed = embedded_listing(pdf)["extension"]
    sites = [e["valueString"] for e in listed if e["url"].endswith("#destroyed-at-site")]
    assert [s.split(":")[0] for s in sites] == ["primary", "replica"]
    assert replica.latest(outcome.minutes["key"]) is not None  # the minutes are at both too


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMR_ARCHIVE_", "AWS_"))}
    env |= {
        f"EMR_ARCHIVE_STACK__{k.upper()}": str(v) for k, v in settings.stack.model_dump().items()
    }
    env |= {
        "EMR_ARCHIVE_DATA_DIR": str(settings.data_dir),
        "EMR_ARCHIVE_S3__BUCKET": settings.s3.bucket,
        "EMR_ARCHIVE_REPLICA__ENABLED": "true",
        "EMR_ARCHIVE_REPLICA__BUCKET": settings.replica.bucket,
        "EMR_ARCHIVE_CATALOG__CATALOG_DIR": str(settings.catalog_dir),
    }
    argv = [sys.executable, "-m", "infra.cli", *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)


def _b64sha(data: bytes) -> str:
    import base64
    import hashlib

    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")

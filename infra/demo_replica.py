"""The demo's second site: a throwaway replica SeaweedFS, every record at both, then a site lost.

:func:`with_replica` turns the replica on before the stack starts (the flows read settings from
the environment, so it is set there too) and :func:`show_second_site` runs after the demo's
verification: the count of record objects at each site, then the replica lost entirely (process
stopped, data directory deleted, started empty), what verification's replica check finds, the
repair from the primary (no key: it only copies sealed bytes), and the same check passing.
"""

from __future__ import annotations

import os
import shutil
import time
from datetime import UTC, datetime, timedelta

import click

from archive.store import RECORDS_PREFIX, ObjectStore, S3ObjectStore
from infra import seaweed
from infra.repair import audit_repair, repair_site
from infra.settings import AppSettings as Settings
from verification.report import Summary
from verification.results import Status
from verification.run import RunPlan
from verification.select import Mode, Selection


def with_replica(settings: Settings) -> Settings:
    """``settings`` with the embedded replica site on (for this process and the flows it runs);
    a replica set up explicitly (``EMR_ARCHIVE_REPLICA__*``) is kept as it is."""
    if settings.replica.enabled:
        return settings
    os.environ["EMR_ARCHIVE_REPLICA__ENABLED"] = "true"
    return settings.model_copy(
        update={"replica": settings.replica.model_copy(update={"enabled": True})}
    )


def catch_up(settings: Settings) -> None:
    """A replica added to an archive that already holds objects (an earlier demo's) starts with
    a repair; on a fresh machine (no catalog yet) there is nothing to copy."""
    if not settings.catalog_dir.exists():
        return
    report = repair_site(settings, site="replica")
    if report.copied:
        audit_repair(settings, report, site="replica")
        click.echo(f"   replica site: caught up with {len(report.copied)} earlier object(s)")


def show_second_site(settings: Settings) -> None:
    if not settings.uses_embedded_replica:
        click.echo("   the replica is a configured endpoint: the demo does not wipe it")
        return
    began = time.perf_counter()
    primary = S3ObjectStore.from_settings(settings, read_only=True)
    replica = S3ObjectStore.from_settings(settings, read_only=True, site="replica")
    click.echo(
        f"   record objects: {_records(primary)} at the primary, {_records(replica)} at the "
        "replica (each written to both before it was catalogued)"
    )
    seaweed.stop(settings, "replica")
    shutil.rmtree(settings.replica_dir)
    seaweed.start(settings, site="replica")
    gone = settings.replica_dir
    click.echo(f"   replica site lost: process stopped, {gone} deleted, started empty")
    lost = _replica_check(settings)
    missing = sum(1 for f in lost.findings if f.reason_code == "replica.missing")
    click.echo(f"   verification: {_verdict(lost)}; {missing} object(s) replica.missing")
    report = repair_site(settings, site="replica")
    audit_repair(settings, report, site="replica")
    rate = len(report.copied) / report.seconds if report.seconds else 0.0
    click.echo(
        f"   emr-archive repair --site replica: {len(report.copied)} object(s), "
        f"{report.bytes_copied:,} bytes in {report.seconds:.1f} s ({rate:.0f}/s), "
        f"refused {len(report.refused)}; no key was used (sealed bytes copied as they are)"
    )
    again = _replica_check(settings)
    # A new client: the site started empty made itself new credentials.
    replica = S3ObjectStore.from_settings(settings, read_only=True, site="replica")
    click.echo(
        f"   verification: {_verdict(again)}; record objects at the replica: {_records(replica)}"
    )
    click.echo(f"   (this step: {time.perf_counter() - began:.0f} s)")


def _records(store: ObjectStore) -> int:
    return sum(
        1 for v in store.list_versions(RECORDS_PREFIX) if v.is_latest and not v.is_delete_marker
    )


def _replica_check(settings: Settings) -> Summary:
    """A verification run selecting no record (archived since tomorrow): its archive-wide
    checks, the replica's among them, cover every object; step 7 verified the records."""
    from flows.verify import start_verification

    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()
    selection = Selection(mode=Mode.SINCE, since=tomorrow)
    vsettings = settings.verification
    plan = RunPlan.create(settings, vsettings, selection=selection, now=datetime.now(UTC))
    with start_verification.fn(settings, vsettings, plan) as run:  # the task's body, no Prefect
        return run.finish()


def _verdict(summary: Summary) -> str:
    replica = [c for c in summary.archive_checks if c.check == "replica"]
    if not replica:
        return "no replica check ran"
    check = replica[0]
    word = "passed" if check.status is Status.PASSED else check.status.value.upper()
    return f"replica check {word} ({check.message})"

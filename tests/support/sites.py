"""Settings for a test's own bucket and catalog on the session stack, and what the two-site tests
share (test_second_site.py, test_primary_repair.py): settings that write every object to a primary
and a replica bucket of the test's own, an archived day with one record on legal hold, a repair
with no key on the machine, and a full verification run read as what did not pass."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from archive.catalog import Catalog, CatalogRow, table_to_rows
from archive.core.settings import ReplicaSettings
from archive.store import ReplicatedStore, Site, open_sites
from archive.store.repair import RepairReport
from infra.repair import repair_site
from infra.settings import AppSettings as Settings
from tests.support.nightly import Export, run_once
from verification.config import HoldSet, VerificationSettings
from verification.report import Summary
from verification.results import Status
from verification.run import RunPlan, VerificationRun
from verification.select import Mode, Selection


def own_bucket_settings(
    base: Settings, *, bucket: str, catalog_dir: Path, **update: Any
) -> Settings:
    """``base`` writing to ``bucket`` with a catalog of its own and one worker (a few records
    need no pool); ``update`` sets further fields (a data directory, the stack's ports)."""
    return base.model_copy(
        update={
            "s3": base.s3.model_copy(update={"bucket": bucket}),
            "catalog": base.catalog.model_copy(update={"catalog_dir": catalog_dir}),
            "archive": base.archive.model_copy(update={"workers": 1}),
        }
        | update
    )


def two_site_settings(base: Settings, *, bucket: str, catalog_dir: Path, **update: Any) -> Settings:
    """As :func:`own_bucket_settings`, every object written to ``bucket`` at both sites."""
    update["replica"] = ReplicaSettings(enabled=True, bucket=bucket)
    return own_bucket_settings(base, bucket=bucket, catalog_dir=catalog_dir, **update)


def archive_holding_one(
    settings: Settings, export: Export
) -> tuple[list[CatalogRow], CatalogRow, HoldSet]:
    """Archive ``export`` at both sites and put a legal hold on the first record (mirrored to
    the replica): the catalog's rows, the held row and the holds verification is told of."""
    summary = run_once(settings, export)
    assert summary.archived > 5
    assert summary.failed == {}
    rows = table_to_rows(Catalog.open(settings.catalog_dir).rows())
    held = rows[0]
    both = open_sites(settings)
    assert isinstance(both, ReplicatedStore)
    both.set_legal_hold(held.object_key, version_id=held.version_id, on=True)
    return rows, held, HoldSet.of([held.encounter_id])


def repair_without_keys(settings: Settings, site: Site) -> RepairReport:
    """``site`` repaired from the other with the keyring moved away (no key anywhere: repair
    copies sealed bytes, it cannot decrypt); the report, once it says ok."""
    keyring = settings.keyring_dir
    hidden = keyring.with_name("keys-away")
    keyring.rename(hidden)
    try:
        report = repair_site(settings, site=site)
    finally:
        hidden.rename(keyring)
    assert report.ok, report.refused
    return report


def verify_full(settings: Settings, output_dir: Path, holds: HoldSet) -> Summary:
    """A full verification run in this process, every record and every archive-wide check."""
    vsettings = VerificationSettings(output_dir=output_dir, workers=1)
    plan = RunPlan.create(
        settings, vsettings, selection=Selection(mode=Mode.FULL), now=datetime.now(UTC)
    )
    with VerificationRun.start(settings, vsettings, plan, holds=holds, keep_results=True) as run:
        for batch in run.batches():
            run.verify_batch(batch)
        return run.finish()


def not_passed(summary: Summary) -> dict[str, str]:
    """Archive-wide check name -> its reason code, and encounter id -> its status, for each
    that did not pass."""
    found = {
        c.check: c.reason_code for c in summary.archive_checks if c.status is not Status.PASSED
    }
    found |= {
        r.encounter_id: r.status.value for r in summary.results if r.status is not Status.PASSED
    }
    return found

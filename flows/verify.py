"""Prefect flow ``verify-archive``: a table of contents over ``VerificationRun``.

Weekly a stratified sample, monthly everything (flows/deployments.py). One task per batch of
records (hundreds; a task costs 20-80 ms here), the checks fan out to a process pool inside the
run, or, with ``[cluster] scheduler_address`` set, each batch is a task on a Dask worker
(:func:`flows.cluster.verify_on_cluster`: catalog rows in, record results out) and the flow's
process alone writes the log, the reports and the audit event. Tasks pass no PHI through
Prefect: parameters are a mode, a share, a date, catalog rows (pseudonyms and keys); results are
counts or record results; nothing is persisted or cached. The run's verdict is the flow's return
value and its markdown artifact; the flow itself completes so that its report is always written
(the CLI turns the verdict into an exit code).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.schedules import Cron
from prefect.utilities.annotations import quote

from archive import wiring
from archive.audit import ChainReport
from archive.catalog import CatalogRow
from archive.core.settings import load
from flows.cluster import ensure_cluster, verify_on_cluster
from flows.outcome import ended
from retention import Register, lock_expectations
from retrieval.access import AccessRegister
from verification.config import HoldSet, VerificationSettings
from verification.report import Summary
from verification.run import RunPlan, VerificationRun
from verification.select import Selection
from verification.settings import VerifySettings
from verification.worker import FULL_CHECKS

# The CLI sets these (a progress bar, the settings it loaded); Prefect never sees them. A
# deployment's flow run leaves them unset and loads settings from its environment.
PROGRESS: Callable[[int, int], None] | None = None
SETTINGS: VerifySettings | None = None
VERIFICATION_SETTINGS: VerificationSettings | None = None

_NO_STATE: dict[str, Any] = {"cache_policy": NO_CACHE, "persist_result": False}


def _opaque(value: Any) -> Any:
    # Prefect walks task arguments looking for futures; settings look like mappings and a batch
    # holds hundreds of rows. quote() hands them over untouched.
    return quote(value)


@task(name="start-verification", retries=2, retry_delay_seconds=[5, 30], **_NO_STATE)
def start_verification(
    settings: VerifySettings, vsettings: VerificationSettings, plan: RunPlan
) -> VerificationRun:
    chains = chain_reports(settings)
    if dict(chains)["retention register"].passed:
        holds, disposed = register_inputs(settings)
    else:  # a broken register fails the run (in its report); none of its events is trusted
        holds, disposed = HoldSet(), frozenset()
    return VerificationRun.start(
        settings, vsettings, plan, holds=holds, disposed=disposed, chains=chains
    )


def chain_reports(settings: VerifySettings) -> list[tuple[str, ChainReport]]:
    """The retention and access registers checked local <-> bucket, for the run's report."""
    store = wiring.open_store(settings)
    return [
        ("retention register", Register.for_settings(settings, store).verify()),
        ("access register", AccessRegister.for_settings(settings, store).verify()),
    ]


def register_inputs(settings: VerifySettings) -> tuple[HoldSet, frozenset[tuple[str, str]]]:
    """The legal holds and destroyed versions the retention register expects (as a HoldSet)."""
    held, disposed = lock_expectations(settings)
    return HoldSet.of(held), disposed


@task(name="verify-batch", **_NO_STATE)
def verify_batch(run: VerificationRun, batch: list[CatalogRow]) -> dict[str, int]:
    return run.verify_batch(batch)


@task(name="write-verification-report", **_NO_STATE)
def write_report(run: VerificationRun) -> Summary:
    return run.finish()


@task(name="publish-verification-report", **_NO_STATE)
def publish_report(summary: Summary) -> None:
    create_markdown_artifact(
        key="verify-archive",
        markdown=summary.to_markdown(),
        description="verification verdict, counts and reasons (encounter ids only in the report)",
    )


@flow(name="verify-archive", log_prints=False)
def verify_archive(
    mode: str = "sample",
    share: float | None = None,
    since: date | None = None,
    seed: int | None = None,
    checks: str = FULL_CHECKS,
    at: datetime | None = None,
) -> dict[str, Any] | State:
    """Verify the archive: ``full``, a stratified ``sample`` (``share`` of every archive day) or
    the records archived ``since`` a local day; ``at``: judged as if on that date (verify
    --at). Returns the run summary (status, counts), in a Failed state unless everything
    passed."""
    settings = SETTINGS or load(VerifySettings)
    vsettings = VERIFICATION_SETTINGS or settings.verification
    selection = Selection.create(
        mode, default_share=vsettings.sample_share, share=share, since=since, seed=seed
    )
    if settings.cluster.scheduler_address:  # refused before any work when nobody would do it
        ensure_cluster(
            settings.cluster.scheduler_address, timeout_s=settings.cluster.connect_timeout_s
        )
    plan = RunPlan.create(
        settings, vsettings, selection=selection, now=datetime.now(UTC), checks=checks, at=at
    )
    run = start_verification(_opaque(settings), _opaque(vsettings), plan)
    try:
        run.progress = PROGRESS
        if settings.cluster.scheduler_address:  # several machines: batches go to Dask workers
            verify_on_cluster(run, settings.cluster.scheduler_address)
        else:
            for batch in run.batches():
                verify_batch(run, _opaque(batch))
        summary = write_report(run)
    finally:
        run.close()
    publish_report(summary)
    result = summary.to_dict()
    if run.batches_by_worker:
        result["batches_by_worker"] = dict(run.batches_by_worker)
    return ended(result, failure=summary.failure_message)


WEEKLY_SAMPLE_CRON = "0 2 * * 0"  # Sunday 02:00 local: after the nightly run, before the week
# The 2nd at 02:00 local: every record once a month, away from the retention sweep (1st, 03:00)
# that would compete for the same cores.
MONTHLY_FULL_CRON = "0 2 2 * *"


def verification_deployments(settings: VerifySettings) -> list[Any]:
    """The weekly sample and the monthly full verification (flows/deployments.py serves them)."""
    tz = settings.archive.timezone
    return [
        verify_archive.to_deployment(
            name="weekly-sample",
            schedule=Cron(WEEKLY_SAMPLE_CRON, timezone=tz),
            parameters={"mode": "sample"},
            description="Verify a random share of every archive day (default 10%).",
            tags=["emr-archive", "verification"],
        ),
        verify_archive.to_deployment(
            name="monthly-full",
            schedule=Cron(MONTHLY_FULL_CRON, timezone=tz),
            parameters={"mode": "full"},
            description="Verify every catalogued record and the whole bucket.",
            tags=["emr-archive", "verification"],
        ),
    ]

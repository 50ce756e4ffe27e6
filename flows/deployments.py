"""The deployments `emr-archive serve` runs (and prefect.yaml declares for workers): scheduled,
and one an operator triggers (hash-tree renewal)."""

from __future__ import annotations

from typing import Any

from prefect.schedules import Cron

from flows.evidence import evidence_rehash, evidence_renewal
from flows.nightly import nightly_archive
from flows.retention import retention_sweep
from flows.verify import verification_deployments
from verification.settings import VerifySettings as Settings

NIGHTLY_CRON = "0 1 * * *"  # 01:00 local: after the HIS closes the day's encounters
SWEEP_CRON = "0 3 1 * *"  # 03:00 local on the 1st: after that night's archive run
RENEWAL_CRON = "0 4 3 * *"  # 04:00 local on the 3rd: after the monthly full verification


def nightly_deployments(settings: Settings) -> list[Any]:
    """One nightly deployment per configured facility (its own export, lock and lease, so the
    facilities' runs go on side by side), or one over ``source_dir`` when none is configured."""
    tz = settings.archive.timezone
    runs: dict[str, dict[str, Any]] = {
        f"nightly-{code}": {"source": str(source), "facility": code}
        for code, source in sorted(settings.archive.facilities.items())
    }
    if not runs:
        source = settings.archive.source_dir
        runs["nightly"] = {"source": str(source)} if source is not None else {}
    return [
        nightly_archive.to_deployment(
            name=name,
            schedule=Cron(NIGHTLY_CRON, timezone=tz),
            parameters=params,
            description="Archive yesterday's finished encounters (local time)"
            + (f" of facility {params['facility']}." if "facility" in params else "."),
            tags=[
                "emr-archive",
                *([f"facility:{params['facility']}"] if "facility" in params else []),
            ],
        )
        for name, params in runs.items()
    ]


def deployments(settings: Settings) -> list[Any]:
    tz = settings.archive.timezone
    return [
        *nightly_deployments(settings),
        retention_sweep.to_deployment(
            name="monthly",
            schedule=Cron(SWEEP_CRON, timezone=tz),
            description="Propose records whose retention has passed; a person approves.",
            tags=["emr-archive", "retention"],
        ),
        evidence_renewal.to_deployment(
            name="evidence-renewal",
            schedule=Cron(RENEWAL_CRON, timezone=tz),
            description="Renew the evidence records' timestamps before a TSA certificate "
            "ends or an algorithm weakens: one TSA call for every due tree.",
            tags=["emr-archive", "evidence"],
        ),
        # No schedule and no default algorithm: re-hashing every document is a deliberate, rare
        # act (the monthly renewal fails `evidence.hash_renewal_due` instead of doing it), so an
        # operator triggers it, naming the algorithm: `prefect deployment run
        # evidence-rehash/evidence-rehash --param algorithm=sha512` (or the CLI's --hash).
        evidence_rehash.to_deployment(
            name="evidence-rehash",
            description="Hash-tree renewal: re-hash every document into a new chain in the "
            "given algorithm. Run by an operator, never on a schedule.",
            tags=["emr-archive", "evidence"],
        ),
        *verification_deployments(settings),  # weekly sample Sun 02:00, full on the 2nd 02:00
    ]

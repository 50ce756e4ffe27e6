"""Prefect flow ``retention-sweep`` and the wiring the retention commands share.

The sweep runs monthly: it proposes every record whose retention has passed and that is neither
held nor linked to a longer-retention dossier, and publishes the totals. It never deletes: a
person approves the proposal (``emr-archive disposition approve``), which is when deletion and
the minutes happen. Nothing with PHI passes through Prefect: parameters are none, results are
the proposal id and counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from archive import wiring
from archive.audit import AuditLog
from archive.catalog import Catalog
from archive.core.settings import Settings, load_settings
from archive.seal import LocalKeyring
from archive.store import ObjectStore
from retention.disposition import SWEEP_ACTOR, Proposal, propose
from retention.minutes import MinutesWriter
from retention.policy import RetentionPolicy, load_policy
from retention.register import Register, register_dir

_NO_STATE: dict[str, Any] = {"cache_policy": NO_CACHE, "persist_result": False}


@dataclass(frozen=True)
class RetentionParts:
    """Everything a retention command needs, built once from settings."""

    settings: Settings
    store: ObjectStore
    catalog: Catalog
    register: Register
    audit: AuditLog
    policy: RetentionPolicy

    @classmethod
    def open(cls, settings: Settings, *, store: ObjectStore | None = None) -> RetentionParts:
        store = store or wiring.open_store(settings)
        return cls(
            settings=settings,
            store=store,
            catalog=wiring.open_catalog(settings, create=True),
            register=Register.for_settings(settings, store),
            audit=AuditLog.for_settings(settings, store),
            policy=load_policy(settings.archive.retention_policy),
        )

    @property
    def tz(self) -> str:
        return self.settings.archive.timezone

    def keyring(self) -> LocalKeyring:
        return wiring.open_keyring(self.settings)

    def minutes_writer(self) -> MinutesWriter:
        return MinutesWriter(
            settings=self.settings, store=self.store, keys=self.keyring(), policy=self.policy
        )

    def propose(self, *, by: str, now: datetime) -> Proposal | None:
        return propose(
            self.catalog.rows(),
            self.register,
            self.audit,
            policy=self.policy,
            by=by,
            now=now,
            directory=register_dir(self.settings) / "proposals",
        )


@task(name="propose-disposition", **_NO_STATE)
def propose_disposition(now: datetime) -> dict[str, Any]:
    proposal = RetentionParts.open(load_settings()).propose(by=SWEEP_ACTOR, now=now)
    if proposal is None:
        return {"proposal_id": None, "records": 0, "totals": {}, "excluded": {}}
    return {
        "proposal_id": proposal.proposal_id,
        "records": len(proposal.items),
        "totals": proposal.totals(),
        "excluded": proposal.excluded,
    }


@task(name="publish-proposal", **_NO_STATE)
def publish_proposal(result: dict[str, Any]) -> None:
    lines = [f"# Disposition proposal {result['proposal_id'] or '(none)'}", ""]
    lines += [f"- {cls}: {n} record(s)" for cls, n in result["totals"].items()]
    lines += [f"- left out, {why}: {n}" for why, n in result["excluded"].items() if n]
    if result["proposal_id"]:
        lines += [
            "",
            f"Approve: `emr-archive disposition approve {result['proposal_id']} --as USER`",
        ]
    create_markdown_artifact(
        key="retention-sweep",
        markdown="\n".join(lines),
        description="records proposed for destruction (counts, no PHI)",
    )


@flow(name="retention-sweep", log_prints=False)
def retention_sweep() -> dict[str, Any]:
    """Propose the records whose retention has passed; a person approves the proposal later."""
    result = propose_disposition(datetime.now(UTC))
    publish_proposal(result)
    return result

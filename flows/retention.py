"""Prefect flow ``retention-sweep``: a table of contents over :class:`retention.RetentionParts`.

The sweep runs monthly: it proposes every record whose retention has passed and that is neither
held nor linked to a longer-retention dossier, and publishes the totals. It never deletes, and
its proposal is nobody's word: a records officer confirms it (``emr-archive disposition
confirm``) and then the facility head or a delegate approves it (``emr-archive disposition
approve``), which is when deletion and the minutes happen. Nothing with PHI passes through
Prefect: parameters are none, results are the proposal id and counts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from archive.core.settings import load_settings
from retention import SWEEP, RetentionParts

_NO_STATE: dict[str, Any] = {"cache_policy": NO_CACHE, "persist_result": False}


@task(name="propose-disposition", **_NO_STATE)
def propose_disposition(now: datetime) -> dict[str, Any]:
    proposal = RetentionParts.open(load_settings()).propose(by=SWEEP, now=now)
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
        pid = result["proposal_id"]
        lines += [
            "",
            f"1. A records officer confirms: `emr-archive disposition confirm {pid} --as USER`",
            f"2. The facility head or a delegate approves: "
            f"`emr-archive disposition approve {pid} --as USER`",
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

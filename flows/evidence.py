"""Prefect flow ``evidence-renewal``: a table of contents over
:func:`archive.pipeline.evidence_wiring.renew_evidence`.

Monthly: every tree of evidence records whose newest timestamp's TSA certificate ends, or whose
timestamp digest weakens, within ``evidence.renew_before_days`` gets one new ArchiveTimeStamp,
all of them under one TSA call. A missed deadline fails the flow run (Failed in the UI) after
renewing what it could. Nothing with PHI passes through Prefect: counts and reason codes only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State

from archive.core.settings import load_settings
from archive.pipeline.evidence_wiring import renew_evidence
from flows.outcome import ended

_NO_STATE: dict[str, Any] = {"cache_policy": NO_CACHE, "persist_result": False}


@task(name="renew-evidence", **_NO_STATE)
def renew(now: datetime) -> dict[str, Any]:
    out = renew_evidence(load_settings(), now=now)
    return {
        "lines": out.plan.lines(),
        "timestamps": out.timestamps,
        "tokens": out.tokens,
        "trees": out.trees,
        "records": out.records,
        "written": out.written,
        "failed": out.failures(),
    }


@task(name="publish-renewal", **_NO_STATE)
def publish(result: dict[str, Any]) -> None:
    lines = ["# Evidence renewal", "", *(f"    {line}" for line in result["lines"]), ""]
    lines.append(
        f"Renewed {result['tokens']} token(s) over {result['trees']} tree(s), "
        f"{result['records']} record(s), with {result['timestamps']} TSA call(s)."
    )
    lines += [f"- **FAILED** `{code}`: {n}" for code, n in result["failed"].items()]
    create_markdown_artifact(
        key="evidence-renewal", markdown="\n".join(lines), description="counts, no PHI"
    )


@flow(name="evidence-renewal", log_prints=False)
def evidence_renewal() -> dict[str, Any] | State:
    """Renew the proof of every due tree of evidence records with one timestamp; Failed (with
    the counts) when a deadline was missed or the TSA would not answer."""
    result = renew(datetime.now(UTC))
    publish(result)
    failed = result["failed"]
    message = f"evidence renewal: {failed}; see `emr-archive evidence renew --plan`"
    return ended(result, failure=message if failed else None)

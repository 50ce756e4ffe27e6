"""Prefect flows ``evidence-renewal`` and ``evidence-rehash``: tables of contents over
:func:`archive.pipeline.evidence_wiring.renew_evidence` and ``rehash_evidence``.

Monthly: every tree of evidence records whose newest timestamp's TSA certificate ends, or whose
timestamp digest weakens, within ``evidence.renew_before_days`` gets one new ArchiveTimeStamp,
all of them under one TSA call. A missed deadline fails the flow run (Failed in the UI) after
renewing what it could. Nothing with PHI passes through Prefect: counts and reason codes only.

Rarely (the dated table says the trees' hash weakens): a hash-tree renewal re-hashes every
document into a new chain. Reading, opening and hashing every PDF is the part that scales with
the archive, so with ``[cluster] scheduler_address`` set it is shared out over the Dask cluster's
workers (:class:`flows.cluster.RehashOnCluster`), one TSA call per tree and every write still
here. A timestamp renewal has no per-document work (one object per tree), so it runs here.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State

from archive.core.settings import Settings, load_settings
from archive.pipeline.evidence_rehash_remote import RehashContext
from archive.pipeline.evidence_wiring import rehash_evidence, renew_evidence
from flows.cluster import RehashOnCluster, ensure_cluster
from flows.outcome import ended

SETTINGS: Settings | None = None  # set by the CLI (its --config); else read from the environment

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


@flow(name="evidence-rehash", log_prints=False)
def evidence_rehash(algorithm: str, batch_size: int = 200) -> dict[str, Any] | State:
    """Hash-tree renewal of every document into a new chain in ``algorithm``; on the Dask
    cluster (``batch_size`` documents a task) when one is configured. Failed, with the counts,
    when documents were left (damaged, not covered, a batch no worker could do)."""
    settings = SETTINGS or load_settings()
    fan_out = None
    if address := settings.cluster.scheduler_address:
        ensure_cluster(
            address, timeout_s=settings.cluster.connect_timeout_s
        )  # refused before any work when nobody would do it
        context = RehashContext(run_id=uuid.uuid4().hex, settings=settings, algorithm=algorithm)
        fan_out = RehashOnCluster(address, context, batch_size=batch_size)
    out = rehash_evidence(settings, algorithm=algorithm, now=datetime.now(UTC), fan_out=fan_out)
    result: dict[str, Any] = {
        "algorithm": algorithm,
        "documents": out.documents,
        "renewed": out.renewed,
        "already": out.already,
        "written": out.written,
        "timestamps": out.timestamps,
        "resumed": out.resumed,
        "failed": out.failures(),
    }
    if fan_out is not None:
        result["batches_by_worker"] = dict(fan_out.batches_by_worker)
    failed = result["failed"]
    # the first task failure's reason in words (which key provider, which store: no PHI)
    why = f"; {fan_out.problems[0]}" if fan_out is not None and fan_out.problems else ""
    message = f"hash-tree renewal: documents left {failed}{why}; a rerun retries them"
    return ended(result, failure=message if failed else None)

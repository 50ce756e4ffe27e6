"""``emr-archive evidence renew [--plan]``: renew the evidence records' proof, one timestamp for
every tree that is due (the monthly ``evidence-renewal`` deployment runs the same).

Exit status 0 when everything due was renewed in time; 1 when a deadline was missed (a TSA
certificate already ended: ``evidence.expired``; an algorithm already weak:
``evidence.weak_algorithm``), a hash-tree renewal is due (``evidence.hash_renewal_due``) or the
TSA would not answer. What could be renewed is renewed all the same.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from archive.pipeline.evidence_rehash import RehashOutcome
    from infra.settings import AppSettings as Settings

from archive.evidence import SUPPORTED
from infra.cli._command import Group
from infra.cli._ctx import settings_of


@click.group(name="evidence", cls=Group)
def evidence_group() -> None:
    """RFC 4998 evidence records: the long-term proof beside every archived PDF."""


@evidence_group.command("renew")
@click.option(
    "--plan", "plan_only", is_flag=True, help="say what is due and why; no TSA call, no write"
)
@click.option(
    "--hash",
    "algorithm",
    type=click.Choice(sorted(SUPPORTED - {"sha224", "sha3_224"})),
    default=None,
    help="hash-tree renewal instead: re-hash every document into a new chain in this hash "
    "(reads and opens every PDF; rare, when the table says the trees' hash weakens)",
)
@click.pass_context
def evidence_renew(ctx: click.Context, plan_only: bool, algorithm: str | None) -> None:
    """Timestamp renewal (RFC 4998 §5.2) of every tree whose proof is due, in one TSA call."""
    from archive.pipeline.evidence_wiring import rehash_evidence, renew_evidence

    settings = settings_of(ctx)
    if algorithm is not None and settings.cluster.scheduler_address and not plan_only:
        _rehash_on_cluster(settings, algorithm)
        return
    if algorithm is not None:
        _rehash(
            rehash_evidence(
                settings_of(ctx), algorithm=algorithm, now=datetime.now(UTC), plan_only=plan_only
            ),
            algorithm,
            plan_only=plan_only,
        )
        return
    out = renew_evidence(settings_of(ctx), now=datetime.now(UTC), plan_only=plan_only)
    for line in out.plan.lines():
        click.echo(line)
    if not plan_only:
        click.echo(
            f"renewed {out.tokens} token(s) over {out.trees} tree(s), {out.records} record(s): "
            f"{out.timestamps} TSA call(s), {out.written} object(s) written, "
            f"{out.resumed} interrupted renewal(s) finished"
        )
    _fail_on(out.failures())


def _rehash(out: RehashOutcome, algorithm: str, *, plan_only: bool) -> None:
    if plan_only:
        click.echo(
            f"hash-tree renewal to {algorithm}: {out.documents} document(s), {out.already} "
            f"already in {algorithm}; {out.documents - out.already} to read, open and re-hash "
            f"with {out.timestamps} TSA call(s); interrupted renewals to finish: {out.resumed}"
        )
        return
    click.echo(
        f"hash-tree renewal to {algorithm}: {out.renewed} document(s) given a new chain, "
        f"{out.already} already had one; {out.timestamps} TSA call(s), {out.written} object(s) "
        f"written, {out.resumed} interrupted renewal(s) finished"
    )
    _fail_on(out.failures())


def _rehash_on_cluster(settings: Settings, algorithm: str) -> None:
    """The re-hash through the ``evidence-rehash`` flow: its documents on the Dask cluster."""
    from flows import evidence
    from flows.cluster import ensure_cluster
    from flows.outcome import summary_of
    from infra import prefect_server

    ensure_cluster(
        settings.cluster.scheduler_address, timeout_s=settings.cluster.connect_timeout_s
    )  # one line, not a failed flow run
    prefect_server.apply_environment(settings)
    evidence.SETTINGS = settings
    out = summary_of(evidence.evidence_rehash, algorithm=algorithm)
    click.echo(
        f"hash-tree renewal to {algorithm} on the cluster: {out['renewed']} document(s) given a "
        f"new chain, {out['already']} already had one; {out['timestamps']} TSA call(s), "
        f"{out['written']} object(s) written, {out['resumed']} interrupted renewal(s) finished"
    )
    _fail_on(out["failed"])


def _fail_on(failed: dict[str, int]) -> None:
    for code, n in sorted(failed.items()):
        click.echo(f"FAILED {code}: {n}", err=True)
    if failed:
        click.echo(
            "a renewal deadline is missed or could not be met: see README, Preservation",
            err=True,
        )
        sys.exit(1)

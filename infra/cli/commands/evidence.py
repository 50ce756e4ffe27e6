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

import click

from infra.cli._command import Group
from infra.cli._ctx import settings_of


@click.group(name="evidence", cls=Group)
def evidence_group() -> None:
    """RFC 4998 evidence records: the long-term proof beside every archived PDF."""


@evidence_group.command("renew")
@click.option(
    "--plan", "plan_only", is_flag=True, help="say what is due and why; no TSA call, no write"
)
@click.pass_context
def evidence_renew(ctx: click.Context, plan_only: bool) -> None:
    """Timestamp renewal (RFC 4998 §5.2) of every tree whose proof is due, in one TSA call."""
    from archive.pipeline.evidence_wiring import renew_evidence

    out = renew_evidence(settings_of(ctx), now=datetime.now(UTC), plan_only=plan_only)
    for line in out.plan.lines():
        click.echo(line)
    if not plan_only:
        click.echo(
            f"renewed {out.tokens} token(s) over {out.trees} tree(s), {out.records} record(s): "
            f"{out.timestamps} TSA call(s), {out.written} object(s) written, "
            f"{out.resumed} interrupted renewal(s) finished"
        )
    failed = out.failures()
    for code, n in sorted(failed.items()):
        click.echo(f"FAILED {code}: {n}", err=True)
    if failed:
        click.echo(
            "a renewal deadline is missed or could not be met: see README, Preservation",
            err=True,
        )
        sys.exit(1)

"""``emr-archive disposition propose | show | approve``: destruction of records whose retention
has passed.

Two people: a records officer proposes, another (the facility head) approves; approval deletes
every version and writes signed minutes, sealed and locked in the bucket. Both steps run as
signed-in accounts, never as a typed name.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from infra.cli._command import Group
from infra.cli._ctx import retention_parts
from infra.cli._identity import officer


@click.group(name="disposition", cls=Group)
def disposition_group() -> None:
    """Destruction of records whose retention has passed: propose, approve, evidence."""


@disposition_group.command("propose")
@click.pass_context
@officer
def disposition_propose(ctx: click.Context, by: str) -> None:
    """Propose every expired record not on hold or linked (the monthly sweep does the same)."""
    proposal = retention_parts(ctx).propose(by=by, now=datetime.now(UTC))
    if proposal is None:
        click.echo("nothing to propose")
        return
    click.echo(
        f"proposal {proposal.proposal_id}: {len(proposal.items)} records {proposal.totals()}"
    )
    for why, n in proposal.excluded.items():
        click.echo(f"  left out, {why}: {n}")


@disposition_group.command("show")
@click.argument("proposal_id")
@click.pass_context
def disposition_show(ctx: click.Context, proposal_id: str) -> None:
    """List a proposal (encounter ids, pseudonyms, classes, dates; no names)."""
    from retention.disposition import load_proposal

    proposal = load_proposal(retention_parts(ctx).register, proposal_id)
    click.echo(f"proposal {proposal_id} by {proposal.proposed_by} at {proposal.proposed_at}")
    for i in proposal.items:
        click.echo(
            f"  {i.encounter_id}  {i.patient_pseudonym[:19]}...  {i.retention_class}  "
            f"discharged {i.discharged_at[:10]}  retained until {i.retain_until[:10]}"
        )
    click.echo(f"totals: {proposal.totals()}")


@disposition_group.command("approve")
@click.argument("proposal_id")
@click.option(
    "--minutes-out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="also write the signed minutes PDF here",
)
@click.pass_context
@officer
def disposition_approve(
    ctx: click.Context, proposal_id: str, by: str, minutes_out: Path | None
) -> None:
    """Approve a proposal (not its proposer): delete every version, write signed minutes."""
    from retention.disposition import approve
    from retention.minutes import read_minutes

    parts = retention_parts(ctx)
    outcome = approve(
        proposal_id,
        by=by,
        catalog_rows=parts.catalog.rows(),
        register=parts.register,
        audit=parts.audit,
        policy=parts.policy,
        write_minutes=parts.minutes_writer(),
        now=datetime.now(UTC),
    )
    click.echo(f"destroyed {len(outcome.destroyed)} records; minutes {outcome.minutes['key']}")
    for eid, why in outcome.skipped.items():
        click.echo(f"  kept {eid}: {why}")
    if minutes_out is not None:
        pdf = read_minutes(
            parts.store, parts.keyring(), parts.settings, outcome.minutes, proposal_id
        )
        minutes_out.write_bytes(pdf)
        click.echo(f"wrote {minutes_out}")

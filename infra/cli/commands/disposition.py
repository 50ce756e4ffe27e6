"""``emr-archive disposition propose | confirm | show | approve``: destruction of records whose
retention has passed.

Two people: a records officer proposes (or confirms the monthly sweep's proposal), and another
person holding the facility head's or a delegate's role approves; approval deletes every version
and writes signed minutes, sealed and locked in the bucket. Every step runs as a signed-in
account, never as a typed name, and retention records that account's role.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from archive.core.atomic import write_private
from infra.cli._command import Group
from infra.cli._ctx import retention_parts
from infra.cli._identity import person
from retrieval.access import Role

if TYPE_CHECKING:
    from retention import Actor


@click.group(name="disposition", cls=Group)
def disposition_group() -> None:
    """Destruction of records whose retention has passed: propose, approve, evidence."""


@disposition_group.command("propose")
@click.pass_context
@person(Role.RECORDS_OFFICER)
def disposition_propose(ctx: click.Context, actor: Actor) -> None:
    """Propose every expired record not on hold or linked (the monthly sweep does the same).
    Your proposal counts as confirmed by you: another person approves it."""
    proposal = retention_parts(ctx).propose(by=actor, now=datetime.now(UTC))
    if proposal is None:
        click.echo("nothing to propose")
        return
    click.echo(
        f"proposal {proposal.proposal_id}: {len(proposal.items)} records {proposal.totals()}"
    )
    for why, n in proposal.excluded.items():
        click.echo(f"  left out, {why}: {n}")


@disposition_group.command("confirm")
@click.argument("proposal_id")
@click.pass_context
@person(Role.RECORDS_OFFICER)
def disposition_confirm(ctx: click.Context, proposal_id: str, actor: Actor) -> None:
    """Confirm the monthly sweep's proposal (read it first with `show`): the first pair of eyes;
    the facility head or a delegate then approves it."""
    from retention.disposition import confirm

    parts = retention_parts(ctx)
    confirm(
        proposal_id, by=actor, register=parts.register, audit=parts.audit, now=datetime.now(UTC)
    )
    click.echo(
        f"proposal {proposal_id} confirmed by {actor.name}; the facility head or a delegate "
        f"approves it: emr-archive disposition approve {proposal_id} --as USER"
    )


@disposition_group.command("show")
@click.argument("proposal_id")
@click.pass_context
def disposition_show(ctx: click.Context, proposal_id: str) -> None:
    """List a proposal (encounter ids, pseudonyms, classes, dates; no names)."""
    from retention.disposition import confirmed_by, load_proposal

    register = retention_parts(ctx).register
    proposal = load_proposal(register, proposal_id)
    confirmer = confirmed_by(register, proposal) or "nobody yet (`disposition confirm`)"
    click.echo(f"proposal {proposal_id} by {proposal.proposed_by} at {proposal.proposed_at}")
    click.echo(f"confirmed by {confirmer}")
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
@person()  # any account signs in; retention refuses (audited) a role that may not approve
def disposition_approve(
    ctx: click.Context, proposal_id: str, actor: Actor, minutes_out: Path | None
) -> None:
    """Approve a confirmed proposal as the facility head or a delegate (neither its proposer nor
    its confirmer): delete every version, write signed minutes."""
    from retention.disposition import approve
    from retention.minutes import read_minutes

    parts = retention_parts(ctx)
    outcome = approve(
        proposal_id,
        by=actor,
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
        write_private(minutes_out, pdf)  # names encounters and pseudonyms: 0600, always
        click.echo(f"wrote {minutes_out}")

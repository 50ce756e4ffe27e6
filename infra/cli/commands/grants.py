"""``emr-archive grant issue | revoke | list``: what an inspector may find and export, and until
when.

Grants expire by themselves; records officers issue and revoke them and see all of them, an
inspector sees only their own active ones.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from infra.cli._command import Group
from infra.cli._ctx import retrieval_of
from infra.cli._identity import AS_USER, TOKEN_FILE, identity


@click.group(name="grant", cls=Group)
def grant_group() -> None:
    """Inspector grants: what an inspector may find and export, and until when."""


@grant_group.command("issue")
@click.option("--inspector", required=True, help="the inspector's account")
@click.option("--facility", default=None, help="facility code (MA_CSKCB)")
@click.option("--encounter", "encounters", multiple=True, help="encounter id (repeatable)")
@click.option("--patient", is_flag=True, help="one patient's records (id is prompted)")
@click.option("--days", type=click.IntRange(1, 366), default=14, show_default=True)
@click.option("--case", "case_ref", required=True, help="inspection decision or court file")
@AS_USER
@TOKEN_FILE
@click.pass_context
def grant_issue(
    ctx: click.Context,
    inspector: str,
    facility: str | None,
    encounters: tuple[str, ...],
    patient: bool,
    days: int,
    case_ref: str,
    as_user: str | None,
    token_file: Path | None,
) -> None:
    """Issue a grant, from now for --days; it expires by itself."""
    r = retrieval_of(ctx)
    principal = identity(r, as_user, token_file)
    pseudonym = r.pseudonym(click.prompt("patient id", hide_input=True)) if patient else None
    now = datetime.now(UTC)
    grant = r.issue_grant(
        principal,
        now=now,
        inspector=inspector,
        facility=facility,
        encounter_ids=encounters,
        patient_pseudonym=pseudonym,
        case_ref=case_ref,
        valid_from=now,
        valid_until=now + timedelta(days=days),
    )
    click.echo(f"grant {grant.grant_id} for {inspector} until {grant.valid_until:%Y-%m-%d %H:%M}Z")


@grant_group.command("revoke")
@click.argument("grant_id")
@click.option("--reason", required=True)
@AS_USER
@TOKEN_FILE
@click.pass_context
def grant_revoke(
    ctx: click.Context, grant_id: str, reason: str, as_user: str | None, token_file: Path | None
) -> None:
    """Revoke a grant before it expires."""
    r = retrieval_of(ctx)
    principal = identity(r, as_user, token_file)
    r.revoke_grant(principal, grant_id, reason=reason, now=datetime.now(UTC))
    click.echo(f"grant {grant_id} revoked")


@grant_group.command("list")
@AS_USER
@TOKEN_FILE
@click.pass_context
def grant_list(ctx: click.Context, as_user: str | None, token_file: Path | None) -> None:
    """Grants (records officers: all; inspectors: their own active ones)."""
    r = retrieval_of(ctx)
    now = datetime.now(UTC)
    for g in r.grants(identity(r, as_user, token_file), now=now):
        scope = ", ".join(
            x
            for x in (
                g.facility and f"facility {g.facility}",
                g.encounter_ids and f"{len(g.encounter_ids)} encounter(s)",
                g.patient_pseudonym and "one patient",
            )
            if x
        )
        state = "active" if g.active(now) else "expired"
        click.echo(
            f"{g.grant_id} {g.inspector:<16} {scope:<32} until "
            f"{g.valid_until:%Y-%m-%d %H:%M}Z {state} case {g.case_ref}"
        )

"""``emr-archive hold add | remove | confirm-release | list``: legal holds keep records from
destruction while a case runs.

Placing a hold and requesting its release (``remove``) run as a records officer's account
(``--as`` or ``--token-file``); the release happens only when a different person (another
records officer, the facility head or a delegate) confirms it with ``confirm-release``.
A patient id is read from a hidden prompt, never from the command line (shell history, process
list), and turned into its pseudonym at once. ``add`` selects and holds under the archive runs'
lock (:mod:`retention.exclusion`), waiting up to ``--wait`` minutes for a run in progress.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import click

from infra.cli._command import Group
from infra.cli._ctx import retention_parts
from infra.cli._identity import person
from infra.cli.commands.retention import WAIT
from retrieval.access import HOLD_RELEASERS, Role

if TYPE_CHECKING:
    from retention import Actor


@click.group(name="hold", cls=Group)
def hold_group() -> None:
    """Legal holds: keep records from destruction while a case runs."""


@hold_group.command("add")
@click.option("--encounter", "encounters", multiple=True, help="encounter id (repeatable)")
@click.option("--patient", is_flag=True, help="hold every record of a patient (id is prompted)")
@click.option("--facility", default=None, help="facility code (MA_CSKCB), with --from and --to")
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--case", "case_ref", required=True, help="case reference, e.g. court file number")
@click.option("--reason", required=True)
@WAIT
@click.pass_context
@person(Role.RECORDS_OFFICER)
def hold_add(
    ctx: click.Context,
    encounters: tuple[str, ...],
    patient: bool,
    facility: str | None,
    start: datetime | None,
    end: datetime | None,
    case_ref: str,
    reason: str,
    wait_minutes: int,
    actor: Actor,
) -> None:
    """Place a legal hold on every version of the selected records."""
    from retention.holds import HoldScope, place_hold

    parts = retention_parts(ctx)
    if patient:
        patient_id = click.prompt("patient id", hide_input=True)
        scope = HoldScope.for_patient(patient_id, parts.keyring())
    else:
        scope = HoldScope(
            encounter_ids=encounters,
            facility=facility,
            discharged_from=start.date() if start else None,
            discharged_to=end.date() if end else None,
        )
    wait = timedelta(minutes=wait_minutes)
    with parts.runs_excluded("hold add", wait=wait, report=click.echo):
        result = place_hold(
            scope,
            case_ref=case_ref,
            reason=reason,
            by=actor,
            catalog_rows=parts.catalog.rows(),
            register=parts.register,
            audit=parts.audit,
            now=datetime.now(UTC),
            tz=parts.tz,
        )
    click.echo(
        f"hold {result.hold_id}: {result.encounters} records, {result.versions} versions held"
    )


@hold_group.command("remove")
@click.argument("hold_id")
@click.option("--reason", required=True)
@click.pass_context
@person(Role.RECORDS_OFFICER)
def hold_remove(ctx: click.Context, hold_id: str, reason: str, actor: Actor) -> None:
    """Request the release of a hold; a different person confirms it (`confirm-release`)."""
    from retention.holds import request_release

    parts = retention_parts(ctx)
    request_release(
        hold_id,
        by=actor,
        reason=reason,
        register=parts.register,
        audit=parts.audit,
        now=datetime.now(UTC),
    )
    click.echo(
        f"release of {hold_id} requested; the hold stays until a different person confirms: "
        f"emr-archive hold confirm-release {hold_id} --as USER"
    )


@hold_group.command("confirm-release")
@click.argument("hold_id")
@click.pass_context
@person(*HOLD_RELEASERS)
def hold_confirm_release(ctx: click.Context, hold_id: str, actor: Actor) -> None:
    """Confirm another person's release request: versions another active hold needs stay
    held."""
    from retention.holds import confirm_release

    parts = retention_parts(ctx)
    result = confirm_release(
        hold_id, by=actor, register=parts.register, audit=parts.audit, now=datetime.now(UTC)
    )
    click.echo(
        f"hold {hold_id} released: {result.versions} versions cleared, {result.kept} kept "
        "(held by another case)"
    )


@hold_group.command("list")
@click.pass_context
def hold_list(ctx: click.Context) -> None:
    """Active holds: who placed them, when and why, and any release awaiting confirmation."""
    from retention.holds import list_holds

    register = retention_parts(ctx).register
    holds, requests = list_holds(register), register.release_requests()
    for h in holds:
        click.echo(
            f"{h.hold_id}  case {h.case_ref}  by {h.placed_by} at {h.placed_at[:19]}  "
            f"{len(h.encounters)} records, {len(h.versions)} versions  ({h.reason})"
        )
        if h.hold_id in requests:
            asked = requests[h.hold_id]
            click.echo(f"  release requested by {asked['by']} at {asked['at'][:19]}: unconfirmed")
    if not holds:
        click.echo("no active holds")

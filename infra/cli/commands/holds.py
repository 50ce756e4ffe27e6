"""``emr-archive hold add | remove | list``: legal holds keep records from destruction while a case
runs.

Placing and releasing a hold runs as a records officer's account (``--as`` or ``--token-file``).
A patient id is read from a hidden prompt, never from the command line (shell history, process
list), and turned into its pseudonym at once.
"""

from __future__ import annotations

from datetime import UTC, datetime

import click

from infra.cli._command import Group
from infra.cli._ctx import retention_parts
from infra.cli._identity import officer


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
@click.pass_context
@officer
def hold_add(
    ctx: click.Context,
    encounters: tuple[str, ...],
    patient: bool,
    facility: str | None,
    start: datetime | None,
    end: datetime | None,
    case_ref: str,
    reason: str,
    by: str,
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
    result = place_hold(
        scope,
        case_ref=case_ref,
        reason=reason,
        by=by,
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
@officer
def hold_remove(ctx: click.Context, hold_id: str, reason: str, by: str) -> None:
    """Release a hold; versions another active hold needs stay held."""
    from retention.holds import release_hold

    parts = retention_parts(ctx)
    result = release_hold(
        hold_id,
        by=by,
        reason=reason,
        register=parts.register,
        audit=parts.audit,
        now=datetime.now(UTC),
    )
    click.echo(
        f"hold {hold_id} released: {result.versions} versions cleared, {result.kept} kept "
        "(held by another case)"
    )


@hold_group.command("list")
@click.pass_context
def hold_list(ctx: click.Context) -> None:
    """Active holds: who placed them, when and why."""
    from retention.holds import list_holds

    holds = list_holds(retention_parts(ctx).register)
    for h in holds:
        click.echo(
            f"{h.hold_id}  case {h.case_ref}  by {h.placed_by} at {h.placed_at[:19]}  "
            f"{len(h.encounters)} records, {len(h.versions)} versions  ({h.reason})"
        )
    if not holds:
        click.echo("no active holds")

"""``emr-archive hold | retention | disposition | audit``: the records officer's commands.

Thin wiring like :mod:`infra.cli`: settings from the main group, one library call per step, a
readable result. Every command that changes something runs as a records officer's account
(``--as USER``, password prompted, or ``--token-file``), whose name goes into the register and the
audit log: a destruction approved "by" a typed name proved nothing. A patient id is read from a
hidden prompt, never from the command line (shell history, process list), and turned into its
pseudonym at once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from infra.cli_common import AS_USER, TOKEN_FILE, identity
from infra.cli_common import friendly_errors as _friendly_errors
from infra.cli_common import settings_of as _settings

if TYPE_CHECKING:
    from retention.parts import RetentionParts
    from retention.upgrades import UpgradePlan


def _officer(fn: Callable[..., None]) -> Callable[..., None]:
    """Adds --as / --token-file and calls ``fn`` with ``by`` = the signed-in records officer."""

    @AS_USER
    @TOKEN_FILE
    @functools.wraps(fn)
    def wrapper(*args: Any, as_user: str | None, token_file: Path | None, **kwargs: Any) -> None:
        from retrieval.service import Retrieval

        r = Retrieval.open(_settings(click.get_current_context()))
        try:
            principal = identity(r, as_user, token_file)
            by = r.retention_officer(principal, "auth.retention", now=datetime.now(UTC))
        finally:
            r.index.close()
        fn(*args, by=by, **kwargs)

    return wrapper


def _parts(ctx: click.Context) -> RetentionParts:
    from retention.parts import RetentionParts  # lazy: importing Prefect takes seconds

    return RetentionParts.open(_settings(ctx))


# --- holds ---------------------------------------------------------------------------------------


@click.group(name="hold")
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
@_friendly_errors
@_officer
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

    parts = _parts(ctx)
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
@_friendly_errors
@_officer
def hold_remove(ctx: click.Context, hold_id: str, reason: str, by: str) -> None:
    """Release a hold; versions another active hold needs stay held."""
    from retention.holds import release_hold

    parts = _parts(ctx)
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
@_friendly_errors
def hold_list(ctx: click.Context) -> None:
    """Active holds: who placed them, when and why."""
    from retention.holds import list_holds

    holds = list_holds(_parts(ctx).register)
    for h in holds:
        click.echo(
            f"{h.hold_id}  case {h.case_ref}  by {h.placed_by} at {h.placed_at[:19]}  "
            f"{len(h.encounters)} records, {len(h.versions)} versions  ({h.reason})"
        )
    if not holds:
        click.echo("no active holds")


# --- retention upgrades -------------------------------------------------------------------------


@click.group(name="retention")
def retention_group() -> None:
    """Class upgrades: extend locks after a policy change or new record facts."""


_POLICY = click.option(
    "--policy",
    "policy_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="new policy file (default: current)",
)
_FACTS = click.option(
    "--facts",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help='JSON {"encounter id": {"deceased": true, ...}}',
)
_EXPORT = click.option(
    "--export",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="FHIR Bulk Data export holding new facts",
)


def _plan(
    ctx: click.Context, policy_path: Path | None, facts: Path | None, export: Path | None
) -> tuple[RetentionParts, UpgradePlan]:
    from retention.policy import load_policy
    from retention.upgrades import facts_from_export, load_facts_file, plan_upgrade

    parts = _parts(ctx)
    policy = load_policy(policy_path) if policy_path else parts.policy
    updates = {
        **(facts_from_export(export) if export else {}),
        **(load_facts_file(facts) if facts else {}),
    }
    plan = plan_upgrade(
        parts.catalog.rows(), parts.register, policy=policy, facts=updates, tz=parts.tz
    )
    click.echo(f"policy {plan.policy_ref}: {len(plan.changes)} records")
    for s in plan.by_class():
        dates = (
            f"new dates {s.earliest_new:%Y-%m-%d} .. {s.latest_new:%Y-%m-%d}" if s.extend else ""
        )
        click.echo(
            f"  {s.class_id:<28} {s.records:>7} records: extend {s.extend}, unchanged "
            f"{s.unchanged}, shorter rule (lock unchanged) {s.keep_longer}  {dates}"
        )
    for note in plan.skipped:
        click.echo(f"  note: {note}")
    return parts, plan


@retention_group.command("plan")
@_POLICY
@_FACTS
@_EXPORT
@click.pass_context
@_friendly_errors
def retention_plan(
    ctx: click.Context, policy_path: Path | None, facts: Path | None, export: Path | None
) -> None:
    """Show what a new policy or new facts would change; touches nothing."""
    _plan(ctx, policy_path, facts, export)


@retention_group.command("apply")
@_POLICY
@_FACTS
@_EXPORT
@click.pass_context
@_friendly_errors
@_officer
def retention_apply(
    ctx: click.Context, policy_path: Path | None, facts: Path | None, export: Path | None, by: str
) -> None:
    """Extend the locks the plan says to extend (never shortens one) and record it."""
    from retention.upgrades import apply_upgrade

    parts, plan = _plan(ctx, policy_path, facts, export)
    result = apply_upgrade(
        plan, register=parts.register, audit=parts.audit, by=by, now=datetime.now(UTC)
    )
    click.echo(
        f"extended {result.extended_records} records ({result.extended_versions} versions); "
        f"{result.already_later} versions were already locked at least as long"
    )


# --- disposition ---------------------------------------------------------------------------------


@click.group(name="disposition")
def disposition_group() -> None:
    """Destruction of records whose retention has passed: propose, approve, evidence."""


@disposition_group.command("propose")
@click.pass_context
@_friendly_errors
@_officer
def disposition_propose(ctx: click.Context, by: str) -> None:
    """Propose every expired record not on hold or linked (the monthly sweep does the same)."""
    proposal = _parts(ctx).propose(by=by, now=datetime.now(UTC))
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
@_friendly_errors
def disposition_show(ctx: click.Context, proposal_id: str) -> None:
    """List a proposal (encounter ids, pseudonyms, classes, dates; no names)."""
    from retention.disposition import load_proposal

    proposal = load_proposal(_parts(ctx).register, proposal_id)
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
@_friendly_errors
@_officer
def disposition_approve(
    ctx: click.Context, proposal_id: str, by: str, minutes_out: Path | None
) -> None:
    """Approve a proposal (not its proposer): delete every version, write signed minutes."""
    from retention.disposition import approve
    from retention.minutes import read_minutes

    parts = _parts(ctx)
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


# --- audit ---------------------------------------------------------------------------------------


@click.group(name="audit")
def audit_group() -> None:
    """The tamper-evident audit log."""


@audit_group.command("verify")
@click.pass_context
@_friendly_errors
def audit_verify(ctx: click.Context) -> None:
    """Check the audit log's and the retention register's chains against the bucket."""
    parts = _parts(ctx)
    ok = True
    for name, report in (
        ("audit log", parts.audit.verify_chain()),
        ("retention register", parts.register.verify()),
    ):
        ok &= report.passed
        mark = click.style("ok  ", fg="green") if report.passed else click.style("FAIL", fg="red")
        click.echo(f"{mark} {name}: {report.reason}")
    raise SystemExit(0 if ok else 1)


@audit_group.command("show")
@click.option("--actor", default=None)
@click.option("--action", default=None, help="e.g. hold, hold.add, disposition")
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M"]), default=None)
@click.pass_context
@_friendly_errors
def audit_show(
    ctx: click.Context, actor: str | None, action: str | None, since: datetime | None
) -> None:
    """Audit events matching the filters, oldest first."""
    when = since.replace(tzinfo=UTC) if since else None
    for e in _parts(ctx).audit.show(actor=actor, action=action, since=when):
        things = ", ".join(f"{k}:{v[:19]}" for k, v in e.entities[:4])
        more = f" (+{len(e.entities) - 4})" if len(e.entities) > 4 else ""
        click.echo(
            f"{e.recorded:%Y-%m-%d %H:%M:%S}Z {e.actor} ({e.role}) {e.action} {e.outcome} "
            f"{things}{more} {dict(e.detail)}"
        )


COMMANDS = (hold_group, retention_group, disposition_group, audit_group)

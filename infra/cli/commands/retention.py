"""``emr-archive retention plan | apply``: extend locks after a policy change or new record facts
(a death, a link to a lawsuit).

``plan`` shows per retention class what would change and touches nothing; ``apply`` extends the
locks the same plan says to extend, as a records officer, and never shortens one. ``apply`` plans
and extends under the archive runs' lock (:mod:`retention.exclusion`): while a run is in progress
it waits up to ``--wait`` minutes, then is refused with exit code 75 (retry after the run).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from infra.cli._command import Group
from infra.cli._ctx import retention_parts
from infra.cli._identity import officer

if TYPE_CHECKING:
    from retention.parts import RetentionParts
    from retention.upgrades import UpgradePlan


@click.group(name="retention", cls=Group)
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

    parts = retention_parts(ctx)
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
def retention_plan(
    ctx: click.Context, policy_path: Path | None, facts: Path | None, export: Path | None
) -> None:
    """Show what a new policy or new facts would change; touches nothing."""
    _plan(ctx, policy_path, facts, export)


WAIT = click.option(
    "--wait",
    "wait_minutes",
    type=click.IntRange(0, 24 * 60),
    default=0,
    show_default=True,
    help="minutes to wait for an archive run in progress before giving up",
)


@retention_group.command("apply")
@_POLICY
@_FACTS
@_EXPORT
@WAIT
@click.pass_context
@officer
def retention_apply(
    ctx: click.Context,
    policy_path: Path | None,
    facts: Path | None,
    export: Path | None,
    wait_minutes: int,
    by: str,
) -> None:
    """Extend the locks the plan says to extend (never shortens one) and record it."""
    from retention.upgrades import apply_upgrade

    excluded = retention_parts(ctx).runs_excluded(
        "retention apply", wait=timedelta(minutes=wait_minutes), report=click.echo
    )
    with excluded:  # planned under the lock too: a catalog no run is changing
        parts, plan = _plan(ctx, policy_path, facts, export)
        result = apply_upgrade(
            plan, register=parts.register, audit=parts.audit, by=by, now=datetime.now(UTC)
        )
    click.echo(
        f"extended {result.extended_records} records ({result.extended_versions} versions); "
        f"{result.already_later} versions were already locked at least as long"
    )

"""``emr-archive stack up | down | status``: the embedded development stack (SeaweedFS, the
development PKI service, Prefect, the keyring).

Exit status 1 when a component does not answer, so scripts can wait on ``stack status``.
"""

from __future__ import annotations

import sys

import click

from infra import stack
from infra.cli._command import Group
from infra.cli._ctx import settings_of


@click.group(name="stack", cls=Group)
def stack_group() -> None:
    """Start, stop and inspect the embedded development stack."""


def _print_status(rows: list[stack.ComponentStatus]) -> bool:
    for row in rows:
        mark = click.style("ok  ", fg="green") if row.healthy else click.style("FAIL", fg="red")
        click.echo(f"{mark} {row.name:<12} {row.state:<9} {row.detail}")
    return all(r.healthy for r in rows)


@stack_group.command("up")
@click.pass_context
def stack_up(ctx: click.Context) -> None:
    """Start SeaweedFS, the development PKI service and the keyring (idempotent)."""
    ok = _print_status(stack.up(settings_of(ctx)))
    sys.exit(0 if ok else 1)


@stack_group.command("down")
@click.pass_context
def stack_down(ctx: click.Context) -> None:
    """Stop the processes `stack up` started (and only those)."""
    stopped = stack.down(settings_of(ctx))
    click.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@stack_group.command("status")
@click.pass_context
def stack_status(ctx: click.Context) -> None:
    """Say what runs where, and whether it answers."""
    ok = _print_status(stack.status(settings_of(ctx)))
    sys.exit(0 if ok else 1)

"""``emr-archive audit verify | show``: the tamper-evident audit log, read by anyone who may.

``verify`` checks the audit log's, the retention register's and the access register's (grants)
hash chains against their locked bucket copies, both ways, and exits 1 when any is broken.
"""

from __future__ import annotations

from datetime import UTC, datetime

import click

from infra.cli._command import Group
from infra.cli._ctx import retention_parts, settings_of


@click.group(name="audit", cls=Group)
def audit_group() -> None:
    """The tamper-evident audit log."""


@audit_group.command("verify")
@click.pass_context
def audit_verify(ctx: click.Context) -> None:
    """Check the audit log's, retention register's and access register's chains."""
    from retrieval.access import AccessRegister

    parts = retention_parts(ctx)
    access = AccessRegister.for_settings(settings_of(ctx), parts.store)
    ok = True
    for name, report in (
        ("audit log", parts.audit.verify_chain()),
        ("retention register", parts.register.verify()),
        ("access register", access.verify()),
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
def audit_show(
    ctx: click.Context, actor: str | None, action: str | None, since: datetime | None
) -> None:
    """Audit events matching the filters, oldest first."""
    when = since.replace(tzinfo=UTC) if since else None
    for e in retention_parts(ctx).audit.show(actor=actor, action=action, since=when):
        things = ", ".join(f"{k}:{v[:19]}" for k, v in e.entities[:4])
        more = f" (+{len(e.entities) - 4})" if len(e.entities) > 4 else ""
        click.echo(
            f"{e.recorded:%Y-%m-%d %H:%M:%S}Z {e.actor} ({e.role}) {e.action} {e.outcome} "
            f"{things}{more} {dict(e.detail)}"
        )

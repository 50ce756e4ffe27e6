"""``emr-archive repair``: restore what one site lost from the other site's matching copies.

Exit status 0 when everything the site lacked was restored (or, with ``--plan``, could be), 1
when anything was refused (bytes that do not match the catalog, a copy lost at both sites).
Repairing the primary also writes the re-homed map (catalogued version -> restored version),
through which every reader finds the restored records under the catalog's version ids.
"""

from __future__ import annotations

import sys
from typing import get_args

import click

from archive.store import Site
from infra.cli._command import Command
from infra.cli._ctx import settings_of


@click.command("repair", cls=Command)
@click.option(
    "--site",
    type=click.Choice(get_args(Site)),
    default="replica",
    show_default=True,
    help="the site that lost objects",
)
@click.option(
    "--plan", "plan_only", is_flag=True, help="report what would be restored; write nothing"
)
@click.option(
    "--threads",
    type=click.IntRange(1, 32),
    default=8,
    show_default=True,
    help="objects repaired at a time (round trips to both sites overlap)",
)
@click.pass_context
def repair_cmd(ctx: click.Context, site: Site, plan_only: bool, threads: int) -> None:
    """Copy back, under the same lock, the objects one site lost; never decrypts."""
    from infra.repair import audit_repair, repair_site

    settings = settings_of(ctx)
    report = repair_site(settings, site=site, plan_only=plan_only, threads=threads)
    verb = "would restore" if plan_only else "restored"
    click.echo(
        f"{site}: {report.checked} object(s) checked, {verb} {len(report.copied)} "
        f"({report.bytes_copied} bytes), re-locked {len(report.relocked)}, "
        f"re-held {len(report.held)}, refused {len(report.refused)} in {report.seconds:.1f} s"
    )
    if site == "primary" and not plan_only:
        click.echo(
            f"primary: {report.rehomed} catalogued version(s) re-homed to the restored ones "
            f"({report.rehomed_segments} map segment(s) written, locked, at both sites)"
        )
    for r in report.refused:
        click.echo(f"  refused {r.key}: {r.reason_code} ({r.message})")
    if not plan_only:
        audit_repair(settings, report, site=site)
    if not report.ok:
        sys.exit(1)

"""``emr-archive demo``: what ``make demo`` runs; the story itself is told by :mod:`infra.demo`."""

from __future__ import annotations

import click

from infra.cli._command import Command
from infra.cli._ctx import settings_of


@click.command("demo", cls=Command)
@click.pass_context
def demo_cmd(ctx: click.Context) -> None:
    """Run the main job on the embedded stack and show the result (`make demo`)."""
    from infra import demo

    settings = settings_of(ctx)
    demo.run_demo(settings)
    demo.closing_hint(settings)

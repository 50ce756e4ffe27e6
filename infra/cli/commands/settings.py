"""``emr-archive settings``: every setting with its environment variable, default and meaning.

``--markdown`` prints the README's reference table, which a unit test keeps complete.
"""

from __future__ import annotations

import click

from infra.cli._command import Command
from infra.settings import settings_reference


@click.command("settings", cls=Command)
@click.option("--markdown", is_flag=True, help="print the reference table for the README")
def settings_cmd(markdown: bool) -> None:
    """List every setting: environment variable, default and meaning."""
    rows = settings_reference()
    if markdown:
        click.echo("| variable | default | meaning |\n|---|---|---|")
        for env, default, text in rows:
            click.echo(f"| `{env}` | `{default}` | {text} |")
        return
    for env, default, text in rows:
        click.echo(f"{env:<44} {default:<20} {text}")

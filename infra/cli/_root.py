"""The root of ``emr-archive``: the group every command hangs from, and the program's entry.

The root group reads the settings once (environment, ``emr-archive.toml``) into the click
context, where every command finds them; an invalid setting is reported like any other archive
error, before any command runs. Commands are added here, explicitly and in one list, so
``python -m infra.cli`` and the ``emr-archive`` script know the same commands.
"""

from __future__ import annotations

import click

import infra.cli.commands as c
from infra.cli._command import Group
from infra.settings import load_app_settings

PROG_NAME = "emr-archive"


@click.group(name=PROG_NAME, cls=Group)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """emr-archive: signed, encrypted, retention-locked medical-record archive."""
    # Settings handed in by the caller (click's test runner) are kept; from a shell there are none.
    if ctx.obj is None:
        ctx.obj = load_app_settings()


for command in (
    # the embedded stack and the keys
    c.stack_group,
    c.keys_group,
    # the write path: single files, the nightly archive, its catalog
    c.put_cmd,
    c.get_cmd,
    c.sample_cmd,
    c.archive_cmd,
    c.serve_cmd,
    c.lease_group,
    c.catalog_group,
    c.evidence_group,
    # proof that nothing changed
    c.verify_cmd,
    c.repair_cmd,
    c.verify_file_cmd,
    # the records officer: holds, retention upgrades, destruction, the audit log
    c.hold_group,
    c.intake_group,
    c.retention_group,
    c.disposition_group,
    c.audit_group,
    # inspectors: accounts, sessions, grants, search and dossier export, the web portal
    c.user_group,
    c.login_cmd,
    c.logout_cmd,
    c.grant_group,
    c.search_cmd,
    c.retrieve_cmd,
    c.portal_cmd,
    # about the program itself
    c.settings_cmd,
    c.demo_cmd,
):
    cli.add_command(command)


def main() -> None:
    """Run ``emr-archive`` on ``sys.argv``: the console script and ``python -m infra.cli``.

    The program name is fixed so usage lines and help read the same however it was started.
    """
    cli.main(prog_name=PROG_NAME)

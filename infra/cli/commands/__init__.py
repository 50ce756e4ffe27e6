"""Every command of ``emr-archive``, one module per command group.

Defining a command registers it nowhere: :mod:`infra.cli._root` adds each one to the root group,
in one list, so the program has the same commands however it is started.
"""

from infra.cli.commands.accounts import login_cmd, logout_cmd, user_group
from infra.cli.commands.audit import audit_group
from infra.cli.commands.catalog import catalog_group
from infra.cli.commands.demo import demo_cmd
from infra.cli.commands.disposition import disposition_group
from infra.cli.commands.evidence import evidence_group
from infra.cli.commands.files import get_cmd, put_cmd
from infra.cli.commands.grants import grant_group
from infra.cli.commands.holds import hold_group
from infra.cli.commands.intake import intake_group
from infra.cli.commands.keys import keys_group
from infra.cli.commands.lease import lease_group
from infra.cli.commands.nightly import archive_cmd, sample_cmd, serve_cmd
from infra.cli.commands.portal import portal_cmd
from infra.cli.commands.repair import repair_cmd
from infra.cli.commands.retention import retention_group
from infra.cli.commands.search import retrieve_cmd, search_cmd
from infra.cli.commands.settings import settings_cmd
from infra.cli.commands.stack import stack_group
from infra.cli.commands.verify import verify_cmd, verify_file_cmd

__all__ = [
    "archive_cmd",
    "audit_group",
    "catalog_group",
    "demo_cmd",
    "disposition_group",
    "evidence_group",
    "get_cmd",
    "grant_group",
    "hold_group",
    "intake_group",
    "keys_group",
    "lease_group",
    "login_cmd",
    "logout_cmd",
    "portal_cmd",
    "put_cmd",
    "repair_cmd",
    "retention_group",
    "retrieve_cmd",
    "sample_cmd",
    "search_cmd",
    "serve_cmd",
    "settings_cmd",
    "stack_group",
    "user_group",
    "verify_cmd",
    "verify_file_cmd",
]

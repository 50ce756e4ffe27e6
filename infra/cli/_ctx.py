"""What a command gets from its click context: the settings the root group loaded once, and the
services opened on them (retrieval for inspectors, the retention parts for records officers).

The services are imported inside the functions: importing them pulls in Prefect and pyHanko,
which would make ``emr-archive --help`` take seconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from infra.settings import AppSettings

if TYPE_CHECKING:
    from retention.parts import RetentionParts
    from retrieval.service import Retrieval


def settings_of(ctx: click.Context) -> AppSettings:
    """The settings the root command loaded once for this invocation."""
    settings = ctx.find_root().obj
    if not isinstance(settings, AppSettings):
        raise click.UsageError("settings were not loaded: run through the emr-archive command")
    return settings


def retrieval_of(ctx: click.Context) -> Retrieval:
    """The retrieval service (search, export, accounts, grants) on this invocation's settings."""
    from retrieval.service import Retrieval

    return Retrieval.open(settings_of(ctx))


def retention_parts(ctx: click.Context) -> RetentionParts:
    """The register, audit log, catalog and policy the records officer's commands work on."""
    from retention.parts import RetentionParts

    return RetentionParts.open(settings_of(ctx))

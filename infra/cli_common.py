"""What every command module of the CLI shares: error handling and the loaded settings.

Kept apart from infra/cli.py, which imports the command modules to register them: importing
infra.cli from them would be circular.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import click

from archive.errors import AccessDeniedError, ArchiveError, AuthenticationError
from archive.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")
EXIT_ERROR, EXIT_UNAUTHENTICATED, EXIT_FORBIDDEN = 2, 3, 4


def friendly_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """The archive's own errors as one red line and an exit code; anything else is a bug and
    keeps its traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except AuthenticationError as e:
            click.secho(f"not signed in: {e}", fg="red", err=True)
            sys.exit(EXIT_UNAUTHENTICATED)
        except AccessDeniedError as e:
            click.secho(f"refused: {e}", fg="red", err=True)
            sys.exit(EXIT_FORBIDDEN)
        except ArchiveError as e:
            click.secho(f"error: {e}", fg="red", err=True)
            sys.exit(EXIT_ERROR)

    return wrapper


def settings_of(ctx: click.Context) -> Settings:
    """The settings the root command loaded once for this invocation."""
    settings = ctx.find_root().obj
    if not isinstance(settings, Settings):
        raise click.UsageError("settings were not loaded: run through the emr-archive command")
    return settings

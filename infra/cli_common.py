"""What every command module of the CLI shares: error handling, the loaded settings, and who
is running the command (``--as USER`` with a hidden password prompt, or ``--token-file``).

Kept apart from infra/cli.py, which imports the command modules to register them: importing
infra.cli from them would be circular.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import click

from archive.core.errors import ArchiveError
from infra.settings import AppSettings as Settings
from retrieval.errors import AccessDeniedError, AuthenticationError

if TYPE_CHECKING:
    from retrieval.access import Principal
    from retrieval.service import Retrieval

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


AS_USER = click.option("--as", "as_user", default=None, help="your account (password is prompted)")
TOKEN_FILE = click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="a token written by `emr-archive login` instead of --as",
)


def identity(r: Retrieval, as_user: str | None, token_file: Path | None) -> Principal:
    """The account running this command: a token file, or a password asked for (hidden)."""
    now = datetime.now(UTC)
    if token_file is not None:
        return r.authenticate(token_file.read_text(encoding="ascii").strip(), now=now)
    if as_user is None:
        raise click.UsageError("say who you are: --as USER or --token-file FILE")
    return r.sign_in(as_user, click.prompt("password", hide_input=True), now=now)

"""Who runs a command: ``--as USER`` with a hidden password prompt, or ``--token-file`` written by
``emr-archive login``.

Commands that change retention run as a records officer's account, whose name goes into the
register and the audit log: a destruction approved "by" a typed name proved nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from infra.cli._ctx import retrieval_of

if TYPE_CHECKING:
    from retrieval.access import Principal
    from retrieval.service import Retrieval

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


def officer(fn: Callable[..., None]) -> Callable[..., None]:
    """Adds --as / --token-file and calls ``fn`` with ``by`` = the signed-in records officer."""

    @AS_USER
    @TOKEN_FILE
    @functools.wraps(fn)
    def wrapper(*args: Any, as_user: str | None, token_file: Path | None, **kwargs: Any) -> None:
        r = retrieval_of(click.get_current_context())
        try:
            principal = identity(r, as_user, token_file)
            by = r.retention_officer(principal, "auth.retention", now=datetime.now(UTC))
        finally:
            r.index.close()
        fn(*args, by=by, **kwargs)

    return wrapper

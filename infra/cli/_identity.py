"""Who runs a command: ``--as USER`` with a hidden password prompt, or ``--token-file`` written by
``emr-archive login``.

Commands that change retention run as a signed-in account, whose name and role go into the
register and the audit log: a destruction approved "by" a typed name proved nothing. Most run as
a records officer (:func:`officer`); the steps of the second person run as whichever account
signs in (:func:`person`), and retention records that account's real role and refuses one that
may not take the step.
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
    from retention import Actor
    from retrieval.access import Principal, Role
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
    from retrieval.access import Role

    return _signed_in(fn, {Role.RECORDS_OFFICER}, lambda p: p.username, "by")


def person(*roles: Role) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Adds --as / --token-file and calls ``fn`` with ``actor`` = the signed-in account as a
    :class:`retention.Actor` (name and the role the account holds). With ``roles``, any other
    role is refused here (audited); without, retention's own rule judges the role."""

    def decorate(fn: Callable[..., None]) -> Callable[..., None]:
        return _signed_in(fn, set(roles), _actor, "actor")

    return decorate


def _actor(principal: Principal) -> Actor:
    from retention import Actor  # here, not at import: retention pulls in pyHanko

    return Actor(principal.username, principal.role.value)


def _signed_in(
    fn: Callable[..., None],
    roles: set[Role],
    as_arg: Callable[[Principal], object],
    name: str,
) -> Callable[..., None]:
    @AS_USER
    @TOKEN_FILE
    @functools.wraps(fn)
    def wrapper(*args: Any, as_user: str | None, token_file: Path | None, **kwargs: Any) -> None:
        r = retrieval_of(click.get_current_context())
        try:
            principal = identity(r, as_user, token_file)
            r.retention_actor(principal, "auth.retention", roles=roles, now=datetime.now(UTC))
        finally:
            r.index.close()
        fn(*args, **{name: as_arg(principal)}, **kwargs)

    return wrapper

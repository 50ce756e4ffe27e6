"""``emr-archive login | logout | user add | user disable``: accounts for retrieval and the portal,
and signed session tokens for the command line.

``login`` writes a signed token (0600) that later commands take with ``--token-file``; ``logout``
revokes it, so a copied token is refused from then on. Passwords are only ever prompted, hidden.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from archive.core.atomic import write_private
from infra.cli._command import Command, Group
from infra.cli._ctx import retrieval_of
from infra.cli._identity import AS_USER, identity
from retrieval.access import Role


@click.command("login", cls=Command)
@click.option("--as", "as_user", required=True)
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.pass_context
def login_cmd(ctx: click.Context, as_user: str, token_file: Path) -> None:
    """Sign in and write a signed token (valid 8 hours, 0600) for later commands."""
    r = retrieval_of(ctx)
    session = r.login(as_user, click.prompt("password", hide_input=True), now=datetime.now(UTC))
    write_private(token_file, session.token + "\n")  # 0600 even over an existing file
    expires = session.principal.expires_at
    click.echo(f"signed in as {as_user} ({session.principal.role.value}) until {expires:%H:%M}Z")


@click.command("logout", cls=Command)
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.pass_context
def logout_cmd(ctx: click.Context, token_file: Path) -> None:
    """Revoke the token (replaying it is refused from now on) and delete the file."""
    r = retrieval_of(ctx)
    now = datetime.now(UTC)
    r.logout(r.authenticate(token_file.read_text(encoding="ascii").strip(), now=now), now=now)
    token_file.unlink()
    click.echo("signed out; the token is revoked")


@click.group(name="user", cls=Group)
def user_group() -> None:
    """Accounts for retrieval (and the portal)."""


@user_group.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@AS_USER
@click.pass_context
def user_add(ctx: click.Context, username: str, role: str, as_user: str | None) -> None:
    """Add an account (an admin does; the very first account is an admin adding itself)."""
    r = retrieval_of(ctx)
    principal = identity(r, as_user, None) if as_user else None
    password = click.prompt(
        f"new password for {username}", hide_input=True, confirmation_prompt=True
    )
    r.add_user(principal, username, Role(role), password, now=datetime.now(UTC))
    click.echo(f"user {username} ({role}) added")


@user_group.command("disable")
@click.argument("username")
@AS_USER
@click.pass_context
def user_disable(ctx: click.Context, username: str, as_user: str | None) -> None:
    """Disable an account: its password and all its tokens stop working."""
    r = retrieval_of(ctx)
    r.disable_user(identity(r, as_user, None), username, now=datetime.now(UTC))
    click.echo(f"user {username} disabled")

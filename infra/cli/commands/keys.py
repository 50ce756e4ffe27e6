"""``emr-archive keys init | rotate | status``: the key-encryption keys of the local keyring.

Only key identifiers and versions are ever printed, never key material.
"""

from __future__ import annotations

import click

from archive import wiring
from infra.cli._command import Group
from infra.cli._ctx import settings_of


@click.group(name="keys", cls=Group)
def keys_group() -> None:
    """Key-encryption keys of the local keyring."""


@keys_group.command("init")
@click.pass_context
def keys_init(ctx: click.Context) -> None:
    """Create the keyring if it does not exist."""
    ring = wiring.open_keyring(settings_of(ctx), create=True)
    ref = ring.current()
    click.echo(f"keyring ready: current KEK {ref.kek_id} v{ref.version}")


@keys_group.command("rotate")
@click.pass_context
def keys_rotate(ctx: click.Context) -> None:
    """Make a new current KEK version; older versions stay for decryption."""
    ref = wiring.open_keyring(settings_of(ctx)).rotate()
    click.echo(f"new current KEK {ref.kek_id} v{ref.version} (older versions kept)")


@keys_group.command("status")
@click.pass_context
def keys_status(ctx: click.Context) -> None:
    """Show the current KEK (never the key material)."""
    ref = wiring.open_keyring(settings_of(ctx)).current()
    click.echo(f"current KEK {ref.kek_id} v{ref.version}")

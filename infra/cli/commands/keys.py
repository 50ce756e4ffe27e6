"""``emr-archive keys init | rotate | status``: the key-encryption keys of the configured provider.

``local`` (default) keeps them in files under ``keyring_dir``; ``transit`` in an OpenBao/Vault
transit key. ``init`` on ``transit`` with a local keyring in ``keyring_dir`` imports it, so what
was sealed before the switch keeps opening and pseudonyms do not change. Only key identifiers
and versions are ever printed, never key material.
"""

from __future__ import annotations

import click

from archive import wiring
from archive.seal import init_keys
from infra import openbao
from infra.cli._command import Group
from infra.cli._ctx import settings_of


@click.group(name="keys", cls=Group)
def keys_group() -> None:
    """Key-encryption keys of the configured provider (local keyring or transit)."""


@keys_group.command("init")
@click.pass_context
def keys_init(ctx: click.Context) -> None:
    """Create the key store if it does not exist; on transit, import a local keyring found."""
    settings = settings_of(ctx)
    if settings.uses_embedded_openbao:
        openbao.start(settings)
    ring, done = init_keys(settings)
    ref = ring.current()
    click.echo(f"{done}: current KEK {ref.kek_id} v{ref.version}")


@keys_group.command("rotate")
@click.pass_context
def keys_rotate(ctx: click.Context) -> None:
    """Make a new current KEK version; older versions stay for decryption."""
    settings = settings_of(ctx)
    ref = wiring.open_keyring(settings).rotate()
    click.echo(f"new current KEK {ref.kek_id} v{ref.version} (older versions kept)")
    if settings.keys.provider == "transit":
        ttl = settings.keys.batch_key_ttl_s
        click.echo(f"running processes seal under it within {ttl:.0f} s (batch_key_ttl_s)")


@keys_group.command("status")
@click.pass_context
def keys_status(ctx: click.Context) -> None:
    """Show the provider and the current KEK (never the key material)."""
    settings = settings_of(ctx)
    ref = wiring.open_keyring(settings).current()
    where = settings.transit_url if settings.keys.provider == "transit" else settings.keyring_dir
    provider = settings.keys.provider
    click.echo(f"provider {provider} at {where}: current KEK {ref.kek_id} v{ref.version}")

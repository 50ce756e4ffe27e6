"""``emr-archive keys init | rotate | status``: the key-encryption keys of the configured provider.

``local`` (default) keeps them in files under ``keyring_dir``; ``transit`` in an OpenBao/Vault
transit key; ``pkcs11`` as non-extractable AES keys on an HSM or token. ``init`` on ``transit``
or ``pkcs11`` with a local keyring in ``keyring_dir`` imports it, so what was sealed before the
switch keeps opening and pseudonyms do not change. Only key identifiers and versions are ever
printed, never key material.
"""

from __future__ import annotations

import click

from archive import wiring
from archive.core.settings import Settings
from archive.seal import init_keys
from infra import openbao
from infra.cli._command import Group
from infra.cli._ctx import settings_of


@click.group(name="keys", cls=Group)
def keys_group() -> None:
    """Key-encryption keys of the configured provider (local keyring, transit or PKCS#11)."""


@keys_group.command("init")
@click.pass_context
def keys_init(ctx: click.Context) -> None:
    """Create the key store if it does not exist; on transit or pkcs11, import a local keyring."""
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
    if settings.keys.provider == "pkcs11":
        every = settings.keys.pkcs11_refresh_s
        click.echo(f"running processes seal under it within {every:.0f} s (pkcs11_refresh_s)")


@keys_group.command("status")
@click.pass_context
def keys_status(ctx: click.Context) -> None:
    """Show the provider and the current KEK (never the key material)."""
    settings = settings_of(ctx)
    keys = wiring.open_keyring(settings)
    ref = keys.current()
    provider = settings.keys.provider
    click.echo(
        f"provider {provider} at {_where(settings)}: current KEK {ref.kek_id} v{ref.version}"
    )
    versions = getattr(keys, "versions", None)  # the PKCS#11 keyring lists its token's keys
    if callable(versions):
        click.echo(f"versions {', '.join(str(v) for v in versions())} on the token")


def _where(settings: Settings) -> str:
    keys = settings.keys
    if keys.provider == "transit":
        return settings.transit_url
    if keys.provider == "pkcs11":
        token = keys.pkcs11_token_label or keys.pkcs11_token_serial
        return f"token {token} ({keys.pkcs11_module or 'SoftHSM2'})"
    return str(settings.keyring_dir)

"""Open the key store the settings name: the one place that picks a :class:`ArchiveKeys`.

``local`` (default): :class:`~archive.seal.keyring.LocalKeyring`, files under ``keyring_dir``.
``transit``: :class:`~archive.seal.transit.TransitKeyring`, an OpenBao/Vault transit key.
``pkcs11``: :class:`~archive.seal.hsm.Pkcs11Keyring`, AES keys on an HSM or token
(:mod:`~archive.seal.hsm_setup`, imported only then: python-pkcs11 and the signer's PIN reader).

:func:`init_keys` is ``emr-archive keys init``: it creates what the provider needs, and when a
local keyring already sits in ``keyring_dir`` it moves that keyring under the new provider (its
KEK versions and its pseudonym secret, encrypted by the transit key), so everything archived
before the switch keeps opening and every patient keeps their pseudonym.
"""

from __future__ import annotations

import hmac

from archive.core.errors import KeyringError
from archive.core.settings import Settings
from archive.seal.keyfiles import KEKS_FILE, make_private_dir
from archive.seal.keyring import LocalKeyring
from archive.seal.keys import KEY_BYTES, ArchiveKeys
from archive.seal.transit import TransitKeyring, new_pseudonym_secret
from archive.seal.transit_client import TransitClient
from archive.seal.transit_state import (
    TRANSIT_FILE,
    TransitState,
    check_key,
    decode_state,
    write_state,
)


def open_keys(settings: Settings) -> ArchiveKeys:
    """The configured key store, which must exist (``keys init`` / ``stack up`` create it)."""
    if settings.keys.provider == "transit":
        return _open_transit(settings, _client(settings))
    if settings.keys.provider == "pkcs11":
        from archive.seal.hsm_setup import open_pkcs11

        return open_pkcs11(settings)
    return LocalKeyring.open(settings.keyring_dir)


def init_keys(settings: Settings) -> tuple[ArchiveKeys, str]:
    """Create the configured key store if missing (idempotent); returns it and what was done."""
    if settings.keys.provider == "local":
        ring = LocalKeyring.open_or_create(settings.keyring_dir, kek_id=settings.keys.kek_id)
        return ring, "local keyring ready"
    if settings.keys.provider == "pkcs11":
        from archive.seal.hsm_setup import init_pkcs11

        return init_pkcs11(settings)
    client = _client(settings)
    client.ensure_key()
    path = settings.keyring_dir / TRANSIT_FILE
    local = _local_keyring(settings)
    if not path.exists():
        make_private_dir(settings.keyring_dir)
        secret = local.pseudonym_secret if local else new_pseudonym_secret()
        state = TransitState(client.key, client.encrypt(secret))
        write_state(path, _with_legacy(state, local, client), replace=False)
        done = "transit keyring created" + (", local keyring imported" if local else "")
        return _open_transit(settings, client), done
    state = decode_state(path)
    check_key(state, client.key, path)
    if local is None:
        return _open_transit(settings, client), "transit keyring ready"
    if not hmac.compare_digest(client.decrypt(state.pseudonym_secret), local.pseudonym_secret):
        raise KeyringError(
            f"the local keyring in {settings.keyring_dir} has another pseudonym secret than the "
            "transit keyring: it belongs to another archive; move it away"
        )
    merged = _with_legacy(state, local, client)
    if merged != state:
        write_state(path, merged, replace=True)
        return _open_transit(settings, client), "new local KEK versions imported"
    return _open_transit(settings, client), "transit keyring ready (local keyring imported)"


def _with_legacy(
    state: TransitState, local: LocalKeyring | None, client: TransitClient
) -> TransitState:
    """``state`` plus every local KEK version it lacks, each encrypted by the transit key."""
    if local is None:
        return state
    kek_id = local.current().kek_id
    if state.legacy_kek_id not in (None, kek_id):
        raise KeyringError(
            f"the transit keyring already imported KEK {state.legacy_kek_id!r}, not {kek_id!r}"
        )
    versions = dict(state.legacy_versions)
    for version, kek in sorted(local.kek_versions().items()):
        if version not in versions:
            versions[version] = client.encrypt(kek)
    return TransitState(state.transit_key, state.pseudonym_secret, kek_id, versions)


def _local_keyring(settings: Settings) -> LocalKeyring | None:
    if not (settings.keyring_dir / KEKS_FILE).exists():
        return None
    return LocalKeyring.open(settings.keyring_dir)


def _open_transit(settings: Settings, client: TransitClient) -> TransitKeyring:
    path = settings.keyring_dir / TRANSIT_FILE
    state = decode_state(path)
    check_key(state, client.key, path)
    secret = client.decrypt(state.pseudonym_secret)
    if len(secret) != KEY_BYTES:
        raise KeyringError(f"{path}: the pseudonym secret decrypts to a wrong length")
    return TransitKeyring(
        client=client,
        pseudonym_secret=secret,
        legacy_kek_id=state.legacy_kek_id,
        legacy_versions=state.legacy_versions,
        batch_objects=settings.keys.batch_key_objects,
        batch_ttl_s=settings.keys.batch_key_ttl_s,
    )


def _client(settings: Settings) -> TransitClient:
    keys = settings.keys
    return TransitClient(
        url=settings.transit_url,
        token_file=settings.transit_token_file,
        mount=keys.transit_mount,
        key=keys.transit_key,
        timeout_s=keys.transit_timeout_s,
        ca_file=keys.transit_ca_file,
    )

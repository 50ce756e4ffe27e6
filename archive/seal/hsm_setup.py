"""Open the PKCS#11 keyring, and `keys init` for it: the token from settings, what to put on it.

``keys init`` on an empty token has the token generate the HMAC key, then KEK version 1 (the
keyring exists once a version does, so a crash between the two is finished by running it again).
With a local keyring in ``keyring_dir`` it imports that keyring instead: its pseudonym secret as
the HMAC key and every KEK version under its own number, non-extractable, so everything sealed
before the switch opens and every patient keeps their pseudonym. Keys already on the token are
never replaced: each must prove to be the local one (same RFC 3394 wrap of a probe key, same
HMAC of a probe message) or ``keys init`` refuses, naming the keyring as another archive's.
"""

from __future__ import annotations

import hmac
import os

from cryptography.hazmat.primitives import keywrap

from archive.core.errors import KeyringError
from archive.core.settings import Settings
from archive.seal.hsm import Pkcs11Keyring
from archive.seal.keyfiles import KEKS_FILE
from archive.seal.keyring import LocalKeyring
from archive.seal.keys import KEY_BYTES
from archive.seal.pkcs11_token import KekToken, TokenSpec, open_token
from archive.sign.config import SOFTHSM_MODULE

__all__ = ["init_pkcs11", "open_pkcs11", "token_spec"]

_PROBE = b"emr-archive/keys-init-probe/v1\x00"


def token_spec(settings: Settings) -> TokenSpec:
    keys = settings.keys
    return TokenSpec(
        module=keys.pkcs11_module or SOFTHSM_MODULE,
        token_label=keys.pkcs11_token_label,
        token_serial=keys.pkcs11_token_serial,
        pin_file=keys.pkcs11_pin_file,
        pin_env=keys.pkcs11_pin_env,
        label_prefix=keys.pkcs11_label_prefix,
        kek_id=keys.kek_id,
    )


def open_pkcs11(settings: Settings) -> Pkcs11Keyring:
    """The configured token's keyring: the process's one session on it."""
    token = open_token(token_spec(settings), os.environ)
    return Pkcs11Keyring(
        token, refresh_s=settings.keys.pkcs11_refresh_s, lock_dir=settings.keyring_dir
    )


def init_pkcs11(settings: Settings) -> tuple[Pkcs11Keyring, str]:
    """Create or import the keys (idempotent); returns the keyring and what was done."""
    ring = open_pkcs11(settings)
    token = ring.token
    local = _local_keyring(settings)
    if local is None:
        return ring, _create(ring, token)
    if local.current().kek_id != token.spec.kek_id:
        raise KeyringError(
            f"the local keyring in {settings.keyring_dir} holds KEK {local.current().kek_id!r}, "
            f"the settings name {token.spec.kek_id!r}: set EMR_ARCHIVE_KEYS__KEK_ID to the "
            "keyring's id so that the objects it sealed keep opening"
        )
    done = []
    if token.has_hmac_key():
        if not hmac.compare_digest(token.hmac(_PROBE), _local_mac(local)):
            raise KeyringError(
                f"the {token.spec.describe()} holds another pseudonym secret than the local "
                f"keyring in {settings.keyring_dir}: it belongs to another archive; move it away"
            )
    else:
        token.put_hmac_key(local.pseudonym_secret)
        done.append("pseudonym secret")
    on_token = set(token.versions())
    probe = os.urandom(KEY_BYTES)
    for version, kek in sorted(local.kek_versions().items()):
        if version not in on_token:
            token.import_kek(version, kek)
            done.append(f"v{version}")
        elif token.wrap(version, probe) != keywrap.aes_key_wrap(kek, probe):
            raise KeyringError(
                f"KEK {token.spec.kek_id} v{version} on the {token.spec.describe()} is not the "
                f"local keyring's v{version}: the token belongs to another archive"
            )
    if done:
        return ring, "local keyring imported (" + ", ".join(done) + ")"
    return ring, "pkcs11 keyring ready (local keyring imported)"


def _create(ring: Pkcs11Keyring, token: KekToken) -> str:
    versions = token.versions()
    has_hmac = token.has_hmac_key()
    if versions and not has_hmac:
        raise KeyringError(
            f"the {token.spec.describe()} holds KEK versions but no {token.spec.hmac_label!r}: "
            "restore it from the token's backup (a new one would change every pseudonym)"
        )
    if versions:
        return "pkcs11 keyring ready"
    if not has_hmac:
        token.put_hmac_key(None)
    ring.rotate()  # version 1, generated on the token
    return "pkcs11 keyring created on the token"


def _local_keyring(settings: Settings) -> LocalKeyring | None:
    if not (settings.keyring_dir / KEKS_FILE).exists():
        return None
    return LocalKeyring.open(settings.keyring_dir)


def _local_mac(local: LocalKeyring) -> bytes:
    # What the token's HMAC of the probe must equal, if it holds the local secret.
    return hmac.new(local.pseudonym_secret, _PROBE, "sha256").digest()

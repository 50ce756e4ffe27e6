"""SoftHSM2 tokens for tests: real PKCS#11, one configuration per test process.

SoftHSM2 reads its configuration once per process, so every test of a process shares one token
directory (under pytest's base temp) and tells tokens apart by label. :func:`new_token` gives a
fresh token (random PINs in 0600 files) for any use, a signing key or a key-encryption key;
:func:`signer_on_token` puts a development PKI signer on one and returns the signing settings
that select it by id.

Worker processes (spawn) inherit ``SOFTHSM2_CONF`` from the environment and see every token
created before they started.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from archive.sign.config import SOFTHSM_MODULE, Pkcs11Config
from infra import softhsm
from infra.pki import DevPki, P12Credential
from infra.settings import AppSettings
from infra.softhsm import SoftToken

__all__ = [
    "SoftToken",
    "new_token",
    "settings_on_token",
    "signer_on_token",
    "softhsm_conf",
    "token_dir",
]

_CONF: Path | None = None

# Key and certificate ids of the signer on the token; labels differ, as on Viettel-CA tokens.
KEY_ID = bytes.fromhex("a1b2")
CERT_ID = bytes.fromhex("a1b3")


def softhsm_conf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This process's SoftHSM2 configuration, created on first use."""
    global _CONF
    if _CONF is None:
        if not SOFTHSM_MODULE.exists():
            pytest.fail(f"{SOFTHSM_MODULE} is missing: `apt-get install softhsm2` (make sysdeps)")
        _CONF = softhsm.write_config(tmp_path_factory.getbasetemp() / "softhsm")
        softhsm.use_config(_CONF)
    return _CONF


def new_token(tmp_path_factory: pytest.TempPathFactory, label: str | None = None) -> SoftToken:
    """A new initialised token: module, configuration, label, serial and PIN files."""
    label = label or f"test-{secrets.token_hex(4)}"
    return softhsm.create_token(softhsm_conf(tmp_path_factory), label)


def signer_on_token(
    tmp_path_factory: pytest.TempPathFactory,
    credential: P12Credential,
    *,
    pki: DevPki | None = None,
    chain_from_files: bool = False,
) -> tuple[SoftToken, Pkcs11Config]:
    """``credential``'s key and certificate on a new token; the config that signs with them.
    With ``chain_from_files`` the CA certificates stay off the token and come from ``pki``."""
    token = new_token(tmp_path_factory)
    p12, password = credential.p12.read_bytes(), credential.read_password()
    if chain_from_files:
        p12 = _without_chain(p12, password)
    softhsm.import_signer(
        token,
        p12,
        password,
        key_id=KEY_ID,
        cert_id=CERT_ID,
        key_label="Private Key",
        cert_label="Viettel-CA signer",
    )
    chain = (pki.ca_chain,) if chain_from_files and pki is not None else ()
    config = Pkcs11Config(
        module=token.module,
        key_id=KEY_ID,
        cert_id=CERT_ID,
        token_label=token.label,
        pin_file=token.pin_file,
        chain=chain,
    )
    return token, config


def settings_on_token(settings: AppSettings, token: SoftToken, *, workers: int = 1) -> AppSettings:
    """``settings`` signing with the signer :func:`signer_on_token` put on ``token``, and with
    no PKCS#12 at all: whatever these settings sign, the token signed."""
    root = settings.pki_dir / "trust-root.pem"
    signer = settings.signer.model_copy(
        update={
            "pkcs11_module": token.module,
            "pkcs11_token_label": token.label,
            "pkcs11_key_id": KEY_ID.hex(),
            "pkcs11_cert_id": CERT_ID.hex(),
            "pkcs11_pin_file": token.pin_file,
            "tsa_url": settings.tsa_url,
            "trust_roots": (root,),
            "tsa_trust_roots": (root,),
        }
    )
    archive = settings.archive.model_copy(update={"workers": workers})
    return settings.model_copy(update={"signer": signer, "archive": archive})


def _without_chain(p12: bytes, password: bytes) -> bytes:
    from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

    key, cert, _ = pkcs12.load_key_and_certificates(p12, password)
    assert key is not None
    assert cert is not None
    return pkcs12.serialize_key_and_certificates(
        b"signer",
        key,  # type: ignore[arg-type]
        cert,
        None,
        BestAvailableEncryption(password),
    )


def token_dir(token: SoftToken) -> Path:
    """The token's directory: remove it to pull the token out from under open sessions."""
    # SoftHSM2 names a token's directory by a UUID; its token.object holds the label.
    for path in (token.conf.parent / "tokens").iterdir():
        if token.label.encode() in (path / "token.object").read_bytes():
            return path
    raise AssertionError(f"no directory for {token.label}")

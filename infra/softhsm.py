"""SoftHSM2 tokens for the demo and the tests: a real PKCS#11 module, keys in files.

A configuration (``softhsm2.conf`` and a token directory) under a directory of ours, tokens
initialised in it with random PINs kept in 0600 files, and keys and certificates imported by
object id. Why it is done in-process and not with ``softhsm2-util``/``pkcs11-tool``: those take
the PIN as an argument (visible in the process list), and a process that has loaded the module
does not see tokens another process initialised after that (SoftHSM2 scans its token directory
once, at ``C_Initialize``). python-pkcs11 has no ``C_InitToken``, so that one call goes through
ctypes on the module the process already loaded.

SoftHSM2 reads ``SOFTHSM2_CONF`` once per process, when the module loads: one configuration per
process (:func:`use_config` refuses a second).
"""

from __future__ import annotations

import ctypes
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pkcs11
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    pkcs12,
)
from pkcs11 import Attribute, ObjectClass, TokenFlag
from pkcs11.util.ec import decode_ec_private_key
from pkcs11.util.rsa import decode_rsa_private_key
from pkcs11.util.x509 import decode_x509_certificate

from archive.core.atomic import write_private
from archive.core.settings import Settings
from archive.sign.config import DEV_TOKEN_LABEL, SOFTHSM_MODULE, dev_token_config
from infra.errors import StackError

if TYPE_CHECKING:
    from pkcs11._pkcs11 import lib as Pkcs11Lib  # noqa: N812 - a class named lib

__all__ = [
    "SoftToken",
    "create_token",
    "ensure_dev_token",
    "import_signer",
    "use_config",
    "write_config",
]

CONF_VAR = "SOFTHSM2_CONF"


@dataclass(frozen=True)
class SoftToken:
    """An initialised token: what a PKCS#11 client needs to find it and log in."""

    module: Path
    conf: Path
    label: str
    serial: str
    pin_file: Path  # the user PIN, 0600
    so_pin_file: Path  # the security officer's PIN, 0600

    def pin(self) -> str:
        return self.pin_file.read_text().strip()

    def open(self, *, rw: bool = False) -> pkcs11.Session:
        """A user session (the caller closes it)."""
        token = _find(_lib(self.module), self.label)
        return token.open(rw=rw, user_pin=self.pin())


def write_config(base: Path) -> Path:
    """``base/softhsm2.conf`` with its token directory ``base/tokens`` (created if missing)."""
    tokens = base / "tokens"
    tokens.mkdir(parents=True, exist_ok=True, mode=0o700)
    conf = base / "softhsm2.conf"
    if not conf.exists():
        text = f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
        write_private(conf, text.encode())
    return conf


def use_config(conf: Path) -> None:
    """Make this process's SoftHSM2 read ``conf``; it must not have loaded another."""
    current = os.environ.get(CONF_VAR)
    if current is not None and Path(current) != conf:
        raise StackError(f"this process already uses the SoftHSM2 configuration {current}")
    os.environ[CONF_VAR] = str(conf)


def create_token(conf: Path, label: str, *, module: Path = SOFTHSM_MODULE) -> SoftToken:
    """Initialise a free slot as token ``label`` with random PINs (written beside ``conf``)."""
    use_config(conf)
    lib = _lib(module)
    tokens = _tokens(lib)
    if any(t.label == label for _, t in tokens):
        raise StackError(f"a SoftHSM2 token labelled {label!r} exists already")
    free = [s for s, t in tokens if not t.flags & TokenFlag.TOKEN_INITIALIZED]
    if not free:
        raise StackError("SoftHSM2 offers no free slot")
    pins = conf.parent / "pins"
    pins.mkdir(exist_ok=True, mode=0o700)
    user_pin, so_pin = secrets.token_hex(8), secrets.token_hex(8)
    write_private(pins / f"{label}.pin", user_pin.encode())
    write_private(pins / f"{label}.so-pin", so_pin.encode())
    _init_token(module, free[0].slot_id, so_pin, label)
    token = _find(lib, label)
    with token.open(rw=True, so_pin=so_pin) as session:
        session.init_pin(user_pin)
    return SoftToken(
        module=module,
        conf=conf,
        label=label,
        serial=token.serial.decode(),
        pin_file=pins / f"{label}.pin",
        so_pin_file=pins / f"{label}.so-pin",
    )


def import_signer(
    token: SoftToken,
    p12: bytes,
    password: bytes,
    *,
    key_id: bytes,
    cert_id: bytes | None = None,
    key_label: str = "signing key",
    cert_label: str = "signing certificate",
) -> None:
    """Put a PKCS#12's key (non-extractable) and certificates on ``token``: the signer's
    certificate under ``cert_id`` (default ``key_id``), the chain under ids of their own.
    Different labels for key and certificate, as on Viettel-CA tokens."""
    key, cert, extra = pkcs12.load_key_and_certificates(p12, password)
    if cert is None or key is None:
        raise StackError("the PKCS#12 holds no key and certificate")
    with token.open(rw=True) as session:
        session.create_object(_private_key_template(key, key_id, key_label))
        _put_certificate(session, cert.public_bytes(Encoding.DER), cert_id or key_id, cert_label)
        for i, other in enumerate(extra or []):
            der = other.public_bytes(Encoding.DER)
            _put_certificate(session, der, key_id + bytes([0xC0 + i]), f"CA certificate {i + 1}")


def ensure_dev_token(settings: Settings) -> str:
    """The development signer's key on a SoftHSM2 token (``signer.dev_token``), created once
    under ``data_dir/softhsm`` where :func:`archive.sign.config.dev_token_config` finds it."""
    config = dev_token_config(settings)
    env = dict(config.module_environment)
    conf = write_config(Path(env[CONF_VAR]).parent)
    use_config(conf)
    if not config.module.exists():
        raise StackError(f"{config.module} is missing: `apt-get install softhsm2`")
    lib = _lib(config.module)
    if any(t.label == DEV_TOKEN_LABEL for _, t in _tokens(lib)):
        return f"token {DEV_TOKEN_LABEL!r} ({config.module})"
    token = create_token(conf, DEV_TOKEN_LABEL, module=config.module)
    credential = settings.pki_dir / "signers"
    import_signer(
        token,
        (credential / "hospital-signer.p12").read_bytes(),
        (credential / "hospital-signer.pass").read_bytes().rstrip(b"\r\n"),
        key_id=config.key_id,
        cert_id=config.cert_id,
    )
    assert config.pin_file is not None
    write_private(config.pin_file, token.pin().encode())
    return f"token {DEV_TOKEN_LABEL!r} created ({config.module})"


def _private_key_template(key: object, key_id: bytes, label: str) -> dict[Attribute, object]:
    if isinstance(key, rsa.RSAPrivateKey):
        der = key.private_bytes(Encoding.DER, PrivateFormat.TraditionalOpenSSL, NoEncryption())
        attrs = dict(decode_rsa_private_key(der))
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        der = key.private_bytes(Encoding.DER, PrivateFormat.TraditionalOpenSSL, NoEncryption())
        attrs = dict(decode_ec_private_key(der))
    else:
        raise StackError(f"cannot put a {type(key).__name__} on a token")
    attrs.update(
        {
            Attribute.ID: key_id,
            Attribute.LABEL: label,
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.SIGN: True,
        }
    )
    return attrs


def _put_certificate(session: pkcs11.Session, der: bytes, cert_id: bytes, label: str) -> None:
    attrs = dict(decode_x509_certificate(der))
    attrs.update({Attribute.ID: cert_id, Attribute.LABEL: label, Attribute.TOKEN: True})
    attrs[Attribute.CLASS] = ObjectClass.CERTIFICATE
    session.create_object(attrs)


def _lib(module: Path) -> Pkcs11Lib:
    # python-pkcs11 hands out one lib object per module path; its C_Initialize runs once.
    return pkcs11.lib(str(module))


def _tokens(lib: Pkcs11Lib) -> list[tuple[pkcs11.Slot, pkcs11.Token]]:
    # A slot whose token directory was removed answers CKR_GENERAL_ERROR: skip it.
    found = []
    for slot in lib.get_slots():
        try:
            found.append((slot, slot.get_token()))
        except pkcs11.PKCS11Error:
            continue
    return found


def _find(lib: Pkcs11Lib, label: str) -> pkcs11.Token:
    for _, token in _tokens(lib):
        if token.label == label:
            return token
    raise StackError(f"no SoftHSM2 token labelled {label!r}")


def _init_token(module: Path, slot_id: int, so_pin: str, label: str) -> None:
    c = ctypes.CDLL(str(module))  # the library this process loaded already: same state
    c.C_InitToken.argtypes = [ctypes.c_ulong, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    c.C_InitToken.restype = ctypes.c_ulong
    padded = label.encode().ljust(32)[:32]
    rv = c.C_InitToken(slot_id, so_pin.encode(), len(so_pin), padded)
    if rv != 0:
        raise StackError(f"SoftHSM2 refused to initialise the token {label!r} (CKR 0x{rv:x})")

"""A signing key on a PKCS#11 token or HSM: a Vietnamese CA's USB token, or the hospital's HSM.

A :class:`Pkcs11Config` goes in (module, token, key and certificate ids, where the PIN is); a
:class:`TokenSigningKey` comes out, whose pyHanko signer is pyHanko's ``PKCS11Signer``. Why it is
built this way:

* One session per process, opened once and shared by every signer of the process: a token
  allows few sessions, and logging in costs a PIN check each time. python-pkcs11 serialises the
  operations of a session, so the signing stage's concurrent documents queue on the token; more
  throughput takes more worker processes (each with its session), as many as the token allows.
* Key and certificate are found by object id: on Viettel-CA tokens the key's and the
  certificate's labels differ, and selecting by label fails (pyHanko #456).
* A token error while signing (removed, session closed, PIN locked) fails the document as
  retryable (:class:`TokenUnavailableError`); nothing unsigned leaves the stage. The next
  document tries one new session, at most every ``REOPEN_GAP_S``; a PIN the token refuses is
  never tried twice (each wrong try brings the token closer to locking itself).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Mapping

import pkcs11
from asn1crypto import x509
from pkcs11 import exceptions as p11
from pyhanko.config.pkcs11 import TokenCriteria
from pyhanko.sign.pkcs11 import PKCS11Signer, open_pkcs11_session
from pyhanko.sign.signers.pdf_cms import Signer

from archive.core.errors import ConfigError, TokenUnavailableError
from archive.sign.attributes import CheapCmsAttributes, FixedCadesAttributes
from archive.sign.config import Pkcs11Config, load_certificates
from archive.sign.identity import SignerIdentity

__all__ = ["REOPEN_GAP_S", "TokenSigningKey", "open_token_key"]

REOPEN_GAP_S = 5.0

_OPEN: dict[Pkcs11Config, TokenSigningKey] = {}
_OPEN_LOCK = threading.Lock()

_REASONS: tuple[tuple[type[p11.PKCS11Error], str], ...] = (
    (p11.DeviceRemoved, "the token was removed"),
    (p11.TokenNotPresent, "the token is not present"),
    (p11.PinLocked, "the token's user PIN is locked: unlock it with the SO PIN"),
    (p11.SessionClosed, "the token session was closed"),
    (p11.SessionHandleInvalid, "the token session is no longer valid"),
    (p11.UserNotLoggedIn, "the token session was logged out"),
    (p11.DeviceError, "the token reported a device error"),
    # SoftHSM2 answers so when its token directory disappears under an open session.
    (p11.ObjectHandleInvalid, "the key on the token is gone (token removed?)"),
    (p11.KeyHandleInvalid, "the key on the token is gone (token removed?)"),
)


def open_token_key(config: Pkcs11Config, *, environ: Mapping[str, str]) -> TokenSigningKey:
    """The process's one key for ``config``: opened (a session, a login) on first use."""
    with _OPEN_LOCK:
        key = _OPEN.get(config)
        if key is None:
            key = _OPEN[config] = TokenSigningKey(config, environ=environ)
        return key


def describe(error: p11.PKCS11Error) -> str:
    """What a PKCS#11 error means for the run, without PINs or object contents."""
    for kind, reason in _REASONS:
        if isinstance(error, kind):
            return reason
    return f"the token failed ({type(error).__name__})"


class TokenSigningKey:
    """A key on a token: its certificate and chain are read once, at the first session."""

    def __init__(self, config: Pkcs11Config, *, environ: Mapping[str, str]) -> None:
        self._config = config
        self._environ = dict(environ)  # to read the PIN again for a new session
        self._lock = threading.Lock()
        self._broken: str | None = None
        self._next_attempt = 0.0
        self._signer = _connect(self, config, self._environ)
        self.certificate: x509.Certificate = self._signer.signing_cert
        self.chain: tuple[x509.Certificate, ...] = tuple(
            c for c in self._signer.cert_registry if c.dump() != self.certificate.dump()
        )

    @property
    def identity(self) -> SignerIdentity:
        return SignerIdentity.of(self.certificate)

    def pyhanko_signer(self) -> Signer:
        """The signer of the current session; a new session first if the last one broke."""
        with self._lock:
            if self._broken is not None:
                self._reconnect(self._broken)
            return self._signer

    def mark_broken(self, reason: str) -> None:
        with self._lock:
            self._broken = reason

    def _reconnect(self, reason: str) -> None:
        if time.monotonic() < self._next_attempt:
            raise TokenUnavailableError(f"{reason}; a new session is tried in a few seconds")
        self._next_attempt = time.monotonic() + REOPEN_GAP_S
        # First: closing a session logs the process out of the token (python-pkcs11 calls
        # C_Logout), which would undo the new session's login.
        _close(self._signer.pkcs11_session)
        signer = _connect(self, self._config, self._environ)
        if signer.signing_cert.dump() != self.certificate.dump():
            raise TokenUnavailableError(
                f"the token now holds another certificate under id {self._config.cert_id.hex()}: "
                "restart the run to sign with it"
            )
        self._signer, self._broken = signer, None


class _TokenSigner(CheapCmsAttributes, PKCS11Signer):
    """pyHanko's PKCS#11 signer, reporting token failures as retryable and cheap on attributes."""

    def __init__(self, owner: TokenSigningKey, session: pkcs11.Session, config: Pkcs11Config):
        chain = [cert for path in config.chain for cert in load_certificates(path)]
        super().__init__(
            session,
            key_id=config.key_id,
            cert_id=config.cert_id,
            other_certs_to_pull=None,  # every certificate on the token may complete the chain
            ca_chain=chain,
            embed_roots=False,  # validators bring their own anchors
        )
        self._owner = owner

    async def async_sign_raw(
        self, data: bytes, digest_algorithm: str, dry_run: bool = False
    ) -> bytes:
        try:
            return await super().async_sign_raw(data, digest_algorithm, dry_run)
        except p11.PKCS11Error as e:
            reason = describe(e)
            self._owner.mark_broken(reason)
            raise TokenUnavailableError(f"{reason}; the document waits for the next run") from e


def _connect(
    owner: TokenSigningKey, config: Pkcs11Config, environ: Mapping[str, str]
) -> _TokenSigner:
    for name, value in config.module_environment:
        os.environ.setdefault(name, value)  # read by the module when it loads, once per process
    session = _login(config, config.read_pin(environ))
    signer = _TokenSigner(owner, session, config)
    try:
        signer._load_objects()  # type: ignore[no-untyped-call]  # pyHanko's sync load, once
    except p11.PKCS11Error as e:
        _close(session)
        raise ConfigError(
            f"no single private key with id {config.key_id.hex()} and certificate with id "
            f"{config.cert_id.hex()} on the token ({e}): check EMR_ARCHIVE_SIGNER__PKCS11_KEY_ID "
            "and __PKCS11_CERT_ID against `pkcs11-tool --list-objects`"
        ) from e
    signer.signed_attr_prov_spec = FixedCadesAttributes(signer.signing_cert)
    return signer


def _login(config: Pkcs11Config, pin: str) -> pkcs11.Session:
    criteria = TokenCriteria(
        label=config.token_label,
        serial=config.token_serial.encode() if config.token_serial else None,
    )
    names = [repr(config.token_label) if config.token_label else "", config.token_serial or ""]
    which = " ".join(["token", *filter(None, names)])
    try:
        try:
            return open_pkcs11_session(str(config.module), token_criteria=criteria, user_pin=pin)
        except p11.UserAlreadyLoggedIn:
            # Login is per process and token: another session of this process logged in.
            return open_pkcs11_session(str(config.module), token_criteria=criteria)
    except p11.PinIncorrect as e:
        raise ConfigError(
            f"the {which} refused the PIN: fix the PIN file or variable. The archive does not "
            "try again, since a token locks itself after a few wrong PINs"
        ) from e
    except p11.PKCS11Error as e:
        if type(e) is p11.PKCS11Error and "OS exception while loading" in str(e):
            raise ConfigError(
                f"cannot load the PKCS#11 module {config.module}: fix "
                "EMR_ARCHIVE_SIGNER__PKCS11_MODULE"
            ) from e
        reason = describe(e) if type(e) is not p11.PKCS11Error else "no such token"
        raise TokenUnavailableError(f"cannot open a session on the {which}: {reason}") from e


def _close(session: pkcs11.Session) -> None:
    # A broken session may not close; the module frees it with the process.
    with contextlib.suppress(p11.PKCS11Error):
        session.close()

"""The boundary to a PKCS#11 token or HSM holding the KEKs: python-pkcs11 calls in, bytes and our
errors out.

Keys on the token (``<prefix>`` is ``keys.pkcs11_label_prefix``)::

    <prefix><kek_id>.v<n>   AES-256, one per KEK version: CKA_WRAP/UNWRAP only, never
                            extractable, sensitive, private
    <prefix><kek_id>.hmac   generic secret for CKM_SHA256_HMAC: the pseudonym secret

A data key is wrapped ON the token with CKM_AES_KEY_WRAP (RFC 3394): it goes in as a short-lived
session object, the token wraps it under the KEK and the object is destroyed; unwrapping makes a
session object whose value is read once and destroyed. The KEK never leaves the token, and the
wrapped bytes are exactly what the local keyring makes under the same KEK.

One session per process and token, opened once (:func:`open_token`): a token allows few sessions,
logging in costs a PIN check, and python-pkcs11's ``Session.close`` logs the whole process out of
the token (the signer's session too, if it uses the same token). A token error (removed, session
closed, device error) reopens the session once and retries; if that fails too the call raises
:class:`KeyProviderUnavailableError`, and a new session is tried again after ``REOPEN_GAP_S``.
A PIN the token refuses is a configuration error, never tried twice (tokens lock themselves).

Why not a pool of sessions for the store pool's threads: python-pkcs11 (0.9) initialises the
module with ``C_Initialize(NULL)``, which tells it the process never calls it from two threads at
once, and SoftHSM2 then takes no locks at all: two sessions used at once from two threads crash
the process (tried). So every call of the process on the token goes through one lock, and extra
sessions would buy nothing. Why the data key goes in as a key object and not as data to
``C_Encrypt`` with ``CKM_AES_KEY_WRAP``: SoftHSM2 2.6 refuses that mechanism for encryption, and
it would need CKA_ENCRYPT/DECRYPT on the KEK, which then encrypts anything it is given.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11

from archive.core.errors import (
    ConfigError,
    EnvelopeIntegrityError,
    KeyProviderUnavailableError,
    KeyringError,
)
from archive.seal.keys import KEY_BYTES
from archive.sign.config import read_secret

__all__ = ["REOPEN_GAP_S", "KekToken", "TokenSpec", "open_token"]

REOPEN_GAP_S = 5.0
_T = TypeVar("_T")
# Errors of the wrapped bytes, not of the token: SoftHSM2 answers an altered wrapped key with
# CKR_GENERAL_ERROR, so that one is only believed after the token proves healthy.
_DATA_ERRORS = (p11.WrappedKeyInvalid, p11.WrappedKeyLenRange, p11.EncryptedDataInvalid)
_SESSION_KEY = {Attribute.TOKEN: False, Attribute.PRIVATE: False, Attribute.SENSITIVE: False}


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenSpec:
    """Where the KEKs are: module, token, PIN source, key labels. Hashable, one session each."""

    module: Path
    token_label: str | None
    token_serial: str | None
    pin_file: Path | None
    pin_env: str | None
    label_prefix: str
    kek_id: str

    def version_label(self, version: int) -> str:
        return f"{self.label_prefix}{self.kek_id}.v{version}"

    @property
    def hmac_label(self) -> str:
        return f"{self.label_prefix}{self.kek_id}.hmac"

    def describe(self) -> str:
        names = [repr(self.token_label) if self.token_label else "", self.token_serial or ""]
        return " ".join(["token", *filter(None, names)])


_OPEN: dict[TokenSpec, KekToken] = {}
_OPEN_LOCK = threading.Lock()


def open_token(spec: TokenSpec, environ: Mapping[str, str]) -> KekToken:
    """The process's one session on ``spec``'s token, opened on first use."""
    with _OPEN_LOCK:
        token = _OPEN.get(spec)
        if token is None:
            token = _OPEN[spec] = KekToken(spec, environ)
        return token


class KekToken:
    """KEK versions and the HMAC key on one token; every call serialised on one session."""

    def __init__(self, spec: TokenSpec, environ: Mapping[str, str]) -> None:
        self.spec = spec
        self._environ = dict(environ)  # to read the PIN again for a new session
        self._lock = threading.RLock()
        self._next_attempt = 0.0
        self._version_re = re.compile(
            re.escape(f"{spec.label_prefix}{spec.kek_id}.v") + r"([1-9][0-9]{0,8})"
        )
        self._session = self._login()
        self._keys: dict[str, Any] = {}  # label -> key object of the current session

    # --- reading ---------------------------------------------------------------------------------

    def versions(self) -> list[int]:
        """The KEK versions on the token, refusing one that could leave it or is ambiguous."""

        def find() -> list[int]:
            found: dict[int, Any] = {}
            query = {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES}
            for key in list(self._session.get_objects(query)):
                match = self._version_re.fullmatch(key[Attribute.LABEL])
                if match is None:
                    continue
                version = int(match.group(1))
                if version in found:
                    raise KeyringError(
                        f"the {self.spec.describe()} holds two keys labelled "
                        f"{self.spec.version_label(version)!r}: remove the one never used"
                    )
                if key[Attribute.EXTRACTABLE] or not key[Attribute.SENSITIVE]:
                    raise KeyringError(
                        f"the key {self.spec.version_label(version)!r} on the "
                        f"{self.spec.describe()} is extractable or not sensitive: a KEK must "
                        "never leave the token"
                    )
                found[version] = key
            return sorted(found)

        return self._call("list the KEK versions", find)

    def has_hmac_key(self) -> bool:
        return self._call(
            "look for the HMAC key", lambda: self._find(self.spec.hmac_label) is not None
        )

    # --- using -----------------------------------------------------------------------------------

    def wrap(self, version: int, data_key: bytes) -> bytes:
        def wrap() -> bytes:
            kek = self._key(self.spec.version_label(version))
            dek = self._session.create_object(
                {
                    Attribute.CLASS: ObjectClass.SECRET_KEY,
                    Attribute.KEY_TYPE: KeyType.AES,
                    Attribute.VALUE: data_key,
                    Attribute.EXTRACTABLE: True,
                    **_SESSION_KEY,
                }
            )
            try:
                return bytes(kek.wrap_key(dek, mechanism=Mechanism.AES_KEY_WRAP))
            finally:
                dek.destroy()

        return self._call(f"wrap under {self.spec.version_label(version)}", wrap)

    def unwrap(self, version: int, wrapped: bytes) -> bytes:
        label = self.spec.version_label(version)

        def unwrap() -> bytes:
            kek = self._key(label)
            try:
                dek = kek.unwrap_key(
                    ObjectClass.SECRET_KEY,
                    KeyType.AES,
                    wrapped,
                    mechanism=Mechanism.AES_KEY_WRAP,
                    capabilities=0,
                    template={Attribute.EXTRACTABLE: True, **_SESSION_KEY},
                )
            except (*_DATA_ERRORS, p11.GeneralError) as e:
                if isinstance(e, _DATA_ERRORS) or self._healthy(kek):
                    raise EnvelopeIntegrityError(
                        f"the data key does not unwrap under KEK {label}: the object was altered "
                        "or sealed with another key store"
                    ) from None
                raise
            try:
                value = bytes(dek[Attribute.VALUE])
            finally:
                dek.destroy()
            if len(value) != KEY_BYTES:
                raise EnvelopeIntegrityError(f"KEK {label} unwrapped a data key of wrong length")
            return value

        return self._call(f"unwrap under {label}", unwrap)

    def hmac(self, data: bytes) -> bytes:
        label = self.spec.hmac_label
        return self._call(
            "compute a pseudonym",
            lambda: bytes(self._key(label).sign(data, mechanism=Mechanism.SHA256_HMAC)),
        )

    # --- creating --------------------------------------------------------------------------------

    def generate_kek(self, version: int) -> None:
        """A new KEK version made by the token itself: nobody ever sees it."""
        label = self.spec.version_label(version)
        self._call(
            f"generate {label}",
            lambda: self._session.generate_key(
                KeyType.AES, KEY_BYTES * 8, label=label, store=True, template=_kek_template()
            ),
        )

    def import_kek(self, version: int, kek: bytes) -> None:
        """A local keyring's KEK version, put on the token as non-extractable (``keys init``)."""
        label = self.spec.version_label(version)
        attrs = {Attribute.KEY_TYPE: KeyType.AES, Attribute.LABEL: label, Attribute.VALUE: kek}
        self._call(f"import {label}", lambda: self._create({**attrs, **_kek_template()}))

    def put_hmac_key(self, secret: bytes | None) -> None:
        """The pseudonym secret as an HMAC key: imported, or made by the token when ``None``."""
        template = {
            Attribute.CLASS: ObjectClass.SECRET_KEY,
            Attribute.KEY_TYPE: KeyType.GENERIC_SECRET,
            Attribute.LABEL: self.spec.hmac_label,
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.SIGN: True,
            Attribute.VERIFY: True,
        }
        if secret is None:
            self._call(
                "generate the HMAC key",
                lambda: self._session.generate_key(
                    KeyType.GENERIC_SECRET,
                    KEY_BYTES * 8,
                    mechanism=Mechanism.GENERIC_SECRET_KEY_GEN,
                    store=True,
                    template=template,
                ),
            )
        else:
            self._call(
                "import the HMAC key", lambda: self._create({**template, Attribute.VALUE: secret})
            )

    # --- session ---------------------------------------------------------------------------------

    def _create(self, attrs: dict[Attribute, Any]) -> None:
        self._session.create_object(attrs)
        self._keys.clear()

    def _key(self, label: str) -> Any:
        key = self._keys.get(label)
        if key is None:
            key = self._find(label)
            if key is None:
                raise KeyringError(
                    f"no key {label!r} on the {self.spec.describe()}: run `emr-archive keys init`"
                )
            self._keys[label] = key
        return key

    def _find(self, label: str) -> Any | None:
        found = list(
            self._session.get_objects(
                {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.LABEL: label}
            )
        )
        if len(found) > 1:
            raise KeyringError(f"the {self.spec.describe()} holds several keys labelled {label!r}")
        return found[0] if found else None

    def _healthy(self, kek: Any) -> bool:
        try:
            kek[Attribute.LABEL]
            return True
        except p11.PKCS11Error:
            return False

    def _call(self, what: str, call: Callable[[], _T]) -> _T:
        with self._lock:
            try:
                return call()
            except p11.PKCS11Error as first:
                self._reopen(what, first)
            try:
                return call()
            except p11.PKCS11Error as again:
                self._next_attempt = time.monotonic() + REOPEN_GAP_S
                raise self._unavailable(what, again) from None

    def _reopen(self, what: str, error: p11.PKCS11Error) -> None:
        if time.monotonic() < self._next_attempt:
            raise self._unavailable(what, error) from None
        # First: closing logs the process out, which would undo the new session's login.
        with contextlib.suppress(p11.PKCS11Error):
            self._session.close()
        self._keys.clear()
        try:
            self._session = self._login()
        except KeyProviderUnavailableError:
            self._next_attempt = time.monotonic() + REOPEN_GAP_S
            raise

    def _unavailable(self, what: str, error: p11.PKCS11Error) -> KeyProviderUnavailableError:
        return KeyProviderUnavailableError(
            f"the {self.spec.describe()} failed to {what} ({type(error).__name__}): insert or "
            "unlock the token, check the HSM, then retry"
        )

    def _login(self) -> pkcs11.Session:
        spec = self.spec
        pin = read_secret(
            file=spec.pin_file,
            env=spec.pin_env,
            environ=self._environ,
            what="KEK token PIN",
            settings="EMR_ARCHIVE_KEYS__PKCS11_PIN_FILE or __PKCS11_PIN_ENV",
        ).decode()
        serial = spec.token_serial.encode() if spec.token_serial else None
        if not spec.module.is_file():
            raise ConfigError(
                f"no PKCS#11 module at {spec.module}: fix EMR_ARCHIVE_KEYS__PKCS11_MODULE"
            )
        try:
            lib = pkcs11.lib(str(spec.module))  # one per path and process: loaded once
            token = lib.get_token(token_label=spec.token_label, token_serial=serial)
            try:
                return token.open(rw=True, user_pin=pin)
            except p11.UserAlreadyLoggedIn:
                # Login is per process and token: another session of this process (the signer's).
                return token.open(rw=True)
        except p11.PinIncorrect as e:
            raise ConfigError(
                f"the {spec.describe()} refused the PIN: fix the PIN file or variable. The "
                "archive does not try again, since a token locks itself after a few wrong PINs"
            ) from e
        except p11.PKCS11Error as e:
            raise KeyProviderUnavailableError(
                f"cannot open a session on the {spec.describe()} ({type(e).__name__}): insert "
                "the token or check the HSM, then retry"
            ) from None


def _kek_template() -> dict[Attribute, Any]:
    return {
        Attribute.CLASS: ObjectClass.SECRET_KEY,
        Attribute.TOKEN: True,
        Attribute.PRIVATE: True,
        Attribute.SENSITIVE: True,
        Attribute.EXTRACTABLE: False,
        Attribute.WRAP: True,
        Attribute.UNWRAP: True,
        Attribute.ENCRYPT: False,
        Attribute.DECRYPT: False,
        Attribute.SIGN: False,
        Attribute.VERIFY: False,
    }

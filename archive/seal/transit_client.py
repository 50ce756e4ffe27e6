"""The boundary to an OpenBao/Vault transit engine: hvac calls in, bytes and our errors out.

Every foreign error is wrapped here, once: a server that cannot be reached, is sealed, answers
5xx or refuses the token becomes :class:`KeyProviderUnavailableError` (the record fails
retryable, nothing is sealed under another key); a ciphertext the engine will not decrypt becomes
:class:`EnvelopeIntegrityError`. Messages name the key and the call, never key material.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import hvac
import hvac.exceptions
import requests

from archive.core.errors import (
    EnvelopeIntegrityError,
    KeyProviderUnavailableError,
    KeyringError,
)
from archive.seal.keys import KEY_BYTES

_VERSION = re.compile(r"^[a-z]+:v([1-9][0-9]{0,8}):[A-Za-z0-9+/=]+$")
_T = TypeVar("_T")


def ciphertext_version(ciphertext: str) -> int:
    """The transit key version a ciphertext (``vault:v3:...``) was made under."""
    match = _VERSION.fullmatch(ciphertext)
    if match is None:
        raise EnvelopeIntegrityError("a transit ciphertext is malformed")
    return int(match.group(1))


class TransitClient:
    """One transit key on one mount; thread-safe (a ``requests`` session per hvac client)."""

    def __init__(
        self,
        *,
        url: str,
        token_file: Path,
        mount: str,
        key: str,
        timeout_s: float,
        ca_file: Path | None = None,
    ) -> None:
        self._token_file = token_file
        token = _read_token(token_file)
        verify: bool | str = str(ca_file) if ca_file else True
        self._client = hvac.Client(url=url, token=token, verify=verify, timeout=timeout_s)
        self._transit = self._client.secrets.transit
        self.url, self.mount, self.key = url, mount, key

    def ensure_key(self) -> int:
        """Create the (non-exportable AES-256-GCM) key if missing; returns its latest version."""
        try:
            return self.latest_version()
        except KeyringError as e:
            if "does not exist" not in str(e):
                raise
        self._call(
            "create the key",
            lambda: self._transit.create_key(
                self.key, key_type="aes256-gcm96", exportable=False, mount_point=self.mount
            ),
        )
        return self.latest_version()

    def latest_version(self) -> int:
        response = self._call(
            "read the key", lambda: self._transit.read_key(self.key, mount_point=self.mount)
        )
        if response is None:
            raise KeyringError(f"transit key {self.key!r} does not exist: run `keys init`")
        return int(response["data"]["latest_version"])

    def rotate(self) -> int:
        self._call("rotate", lambda: self._transit.rotate_key(self.key, mount_point=self.mount))
        return self.latest_version()

    def data_key(self) -> tuple[bytes, str]:
        """A fresh 256-bit key made by the engine: its plaintext, and it encrypted by the KEK."""
        response = self._call(
            "issue a data key",
            lambda: self._transit.generate_data_key(
                self.key, key_type="plaintext", bits=KEY_BYTES * 8, mount_point=self.mount
            ),
        )
        data = response["data"]
        return base64.b64decode(data["plaintext"]), str(data["ciphertext"])

    def encrypt(self, plaintext: bytes) -> str:
        response = self._call(
            "encrypt",
            lambda: self._transit.encrypt_data(
                self.key, plaintext=base64.b64encode(plaintext).decode(), mount_point=self.mount
            ),
        )
        return str(response["data"]["ciphertext"])

    def decrypt(self, ciphertext: str) -> bytes:
        response = self._call(
            "decrypt",
            lambda: self._transit.decrypt_data(
                self.key, ciphertext=ciphertext, mount_point=self.mount
            ),
        )
        return base64.b64decode(response["data"]["plaintext"])

    def _call(self, what: str, call: Callable[[], _T]) -> _T:
        try:
            return self._attempt(what, call)
        except KeyProviderUnavailableError:
            # A Vault Agent rewrites its sink when it renews the token: try once with the new one.
            token = _read_token(self._token_file)
            if token == self._client.token:
                raise
            self._client.token = token
            return self._attempt(what, call)

    def _attempt(self, what: str, call: Callable[[], _T]) -> _T:
        where = f"transit key {self.key!r} at {self.url}"
        try:
            return call()
        except hvac.exceptions.InvalidRequest as e:
            # 400: the engine read the request and refused the ciphertext or the parameters.
            raise EnvelopeIntegrityError(
                f"{where} refused to {what}: the wrapped key was altered or made by another key "
                f"({_first_error(e)})"
            ) from None
        except hvac.exceptions.InvalidPath:
            raise KeyringError(f"{where} does not exist: run `emr-archive keys init`") from None
        except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized) as e:
            raise KeyProviderUnavailableError(
                f"{where} refused the token to {what} ({_first_error(e)}): renew the token or "
                "fix its policy, then retry"
            ) from None
        except (hvac.exceptions.VaultError, requests.RequestException) as e:
            # Down, sealed, 5xx, timeouts: retry later; never seal under another key meanwhile.
            raise KeyProviderUnavailableError(
                f"{where} is unavailable to {what} ({type(e).__name__}): start or unseal it, "
                "then retry"
            ) from None


def _first_error(e: Any) -> str:
    errors = getattr(e, "errors", None) or ["no detail"]
    return str(errors[0])[:200]


def _read_token(path: Path) -> str:
    """The token from a 0600 file (a Vault Agent sink in production): never from argv."""
    try:
        st = path.stat()
        if st.st_mode & 0o077:
            raise KeyringError(f"{path} is readable by others: chmod 600 it")
        token = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise KeyringError(
            f"no transit token at {path}: run `emr-archive stack up` (embedded OpenBao) or point "
            "EMR_ARCHIVE_KEYS__TRANSIT_TOKEN_FILE at the Vault Agent's token sink"
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise KeyringError(f"cannot read the transit token file {path}: {e}") from None
    if not token:
        raise KeyringError(f"the transit token file {path} is empty")
    return token

"""Key-encryption keys on a PKCS#11 HSM or token, which never releases them.

Every object keeps its own random data key, wrapped ON the token with RFC 3394 under the current
KEK version (:mod:`.pkcs11_token`): the header is the local keyring's, byte for byte, KEK id and
version included. So a local keyring whose versions were imported (``keys init``) and the token
open each other's objects, and nothing in the envelope says where the KEK lives.

The pseudonym secret is an HMAC key on the token too. Measured on SoftHSM2 (bench/bench_kek.py):
about 80 µs per HMAC against 3 µs in memory; the archive computes two or three per record and one
per search, under a second for a night of 10,000 records, so it stays on the token rather than in
process memory.

A running process looks at the token's versions at most every ``pkcs11_refresh_s`` seconds, so
it follows ``keys rotate`` (made by another process) without a restart, and at once when it meets
a version newer than it knows.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from archive.core.errors import EnvelopeIntegrityError, UnknownKeyError
from archive.seal.keyfiles import locked, make_private_dir
from archive.seal.keys import KEY_BYTES, KekRef, WrappedKey
from archive.seal.pkcs11_token import KekToken
from archive.seal.pseudonyms import KeyedHashes

_WRAPPED_BYTES = KEY_BYTES + 8  # RFC 3394 adds one 64-bit block


class Pkcs11Keyring(KeyedHashes):
    """A :class:`~archive.seal.keys.ArchiveKeys` whose KEK versions and pseudonym secret are keys
    on a token. Build with :func:`archive.seal.providers.open_keys`; thread-safe."""

    def __init__(
        self,
        token: KekToken,
        *,
        refresh_s: float,
        lock_dir: Path,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._token = token
        self.kek_id = token.spec.kek_id
        self._refresh_s, self._clock = refresh_s, clock
        self._lock_dir = lock_dir
        self._lock = threading.Lock()
        self._versions: list[int] = []
        self._looked = float("-inf")
        self._chain_key: bytes | None = None

    @property
    def token(self) -> KekToken:
        return self._token

    # --- KeyProvider -----------------------------------------------------------------------------

    def versions(self) -> list[int]:
        """Every KEK version on the token, as of now."""
        return self._refresh()

    def current(self) -> KekRef:
        with self._lock:
            fresh = self._clock() - self._looked < self._refresh_s and self._versions
            versions = self._versions
        if not fresh:
            versions = self._refresh()
        if not versions:
            raise UnknownKeyError(
                f"the {self._token.spec.describe()} holds no version of KEK {self.kek_id}: run "
                "`emr-archive keys init`"
            )
        return KekRef(self.kek_id, versions[-1])

    def wrap(self, data_key: bytes) -> WrappedKey:
        if len(data_key) != KEY_BYTES:
            raise ValueError(f"data keys are {KEY_BYTES} bytes, got {len(data_key)}")
        ref = self.current()
        return WrappedKey(ref, self._token.wrap(ref.version, data_key))

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        ref = wrapped.kek
        if ref.kek_id != self.kek_id:
            raise UnknownKeyError(
                f"KEK {ref.kek_id} v{ref.version} is not on the {self._token.spec.describe()} "
                f"(it holds {self.kek_id}): use the key store the object was sealed with"
            )
        if len(wrapped.wrapped) != _WRAPPED_BYTES:
            raise EnvelopeIntegrityError("the wrapped data key has a wrong length")
        with self._lock:
            known = ref.version in self._versions
        if not known and ref.version not in self._refresh():
            raise UnknownKeyError(
                f"KEK {ref.kek_id} v{ref.version} is not on the {self._token.spec.describe()}: "
                "import the local keyring it was sealed with (`keys init`) or restore the token"
            )
        return self._token.unwrap(ref.version, wrapped.wrapped)

    def rotate(self) -> KekRef:
        """A new KEK version generated on the token; older ones stay for unwrapping."""
        # Two `keys rotate` on this machine must not both make version N+1 (the token would
        # then hold two keys of one label, which every process refuses until one is removed).
        make_private_dir(self._lock_dir)
        with locked(self._lock_dir):
            version = max(self._refresh(), default=0) + 1
            self._token.generate_kek(version)
            versions = self._refresh()
        if version not in versions:
            raise UnknownKeyError(f"the token did not keep the new KEK version {version}")
        return KekRef(self.kek_id, version)

    # --- pseudonyms ------------------------------------------------------------------------------

    def _mac(self, data: bytes) -> bytes:
        return self._token.hmac(data)

    def chain_key(self) -> bytes:
        # Asked for by every chain writer and reader; it never changes, so the token is asked once.
        if self._chain_key is None:
            self._chain_key = super().chain_key()
        return self._chain_key

    # --- versions --------------------------------------------------------------------------------

    def _refresh(self) -> list[int]:
        versions = self._token.versions()
        with self._lock:
            self._versions, self._looked = versions, self._clock()
        return versions

    def __repr__(self) -> str:
        return f"Pkcs11Keyring({self._token.spec.describe()}, {self.kek_id})"

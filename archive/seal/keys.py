"""What the seal needs from wherever key-encryption keys (KEKs) live: the :class:`KeyProvider`.

The envelope depends on this interface only, never on where keys are kept, so a PKCS#11 HSM, a
Vault/OpenBao transit engine or a cloud KMS is one more implementation beside
:class:`~archive.seal.keyring.LocalKeyring`, without touching the envelope format. A provider
wraps a fresh data key under its current KEK version and unwraps any version it ever held:
objects sealed under an old version must open for their whole retention (up to 30 years).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

KEY_BYTES = 32  # AES-256 KEKs, AES-256 data keys, HMAC-SHA256 secret


@dataclass(frozen=True, slots=True)
class KekRef:
    """Names one version of a key-encryption key; stored in every sealed object's header."""

    kek_id: str
    version: int


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A data key encrypted under a KEK. Safe to store in the clear."""

    kek: KekRef
    wrapped: bytes


class KeyProvider(Protocol):
    """Wraps and unwraps per-object data keys: :class:`~archive.seal.keyring.LocalKeyring`,
    :class:`~archive.seal.transit.TransitKeyring` (OpenBao/Vault),
    :class:`~archive.seal.hsm.Pkcs11Keyring` (PKCS#11 HSM or token)."""

    def current(self) -> KekRef:
        """The KEK version new objects are sealed under."""
        ...

    def wrap(self, data_key: bytes) -> WrappedKey:
        """Encrypt ``data_key`` under the current KEK version."""
        ...

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        """Return the data key.

        Raises UnknownKeyError when the KEK id or version is not held here, and
        EnvelopeIntegrityError when the wrapped bytes do not decrypt under that KEK (altered, or
        wrapped by a different key store).
        """
        ...


class ArchiveKeys(KeyProvider, Protocol):
    """Everything the archive needs from its key store: data-key wrapping under a rotating KEK,
    and the keyed hashes made from the pseudonym secret, which never rotates.

    :func:`archive.seal.providers.open_keys` picks the implementation the settings name.
    """

    def rotate(self) -> KekRef:
        """Make a new KEK version current; every older version still unwraps."""
        ...

    def pseudonym(self, patient_id: str) -> str: ...

    def record_token(self, record_id: str) -> str: ...

    def quarantine_digest(self, raw_id: object) -> str | None: ...

    def chain_key(self) -> bytes: ...

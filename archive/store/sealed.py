"""An :class:`~archive.store.ObjectStore` that seals what it writes and opens what it reads.

Records are sealed by :mod:`archive.store.deposit`. The archive's own metadata (catalog manifest
copies, audit and retention-register segments, disposition proposals) holds encounter ids beside
object keys, pseudonyms, dates, facilities and retention classes, so it must not reach the bucket
in clear either (decision 4). Wrapping the store keeps that code unchanged: it writes and reads
plaintext, the bucket only ever holds envelopes (:mod:`archive.seal`) whose AAD binds the bucket
and the key, so a copy moved to another key does not open.

Sealing is randomised, so create-once is decided on the plaintext, as :func:`archive.store.deposit`
does: if the key already holds an object, it is opened and compared; the same plaintext is the
existing version (``created=False``), anything else (or an object that does not open) is an
:class:`~archive.core.errors.ObjectConflictError`. Unlike a deposit, the lock of an existing
version is left as it is, like the plain store's ``put_locked``.

``PutResult.sha256``/``size`` describe the plaintext (callers compare them with what they wrote);
:meth:`SealedStore.head` and :meth:`SealedStore.latest` give the sealed object's size and no
SHA-256 (the store's checksum is of the envelope, not of the plaintext): hash what :meth:`get`
returns instead. :meth:`get` raises :class:`~archive.core.errors.SealError` for an object that
does not open under these keys: callers report it as damaged or foreign.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import Final

from archive.core.errors import ObjectConflictError, SealError, StoreError
from archive.core.settings import SealSettings, Settings
from archive.seal import KeyProvider, ObjectIdentity, open_keys, seal, unseal
from archive.store.base import (
    ClaimStore,
    ObjectHead,
    ObjectStore,
    ObjectVersion,
    PutResult,
    sha256_hex,
)

META_RECORD_PREFIX: Final = "meta:"


class SealedStore:
    """Seal on write, open on read; lock, listing and deletion pass through unchanged."""

    def __init__(self, inner: ObjectStore, *, keys: KeyProvider, settings: SealSettings) -> None:
        self._inner, self._keys, self._settings = inner, keys, settings

    @classmethod
    def for_settings(
        cls, settings: Settings, store: ObjectStore, *, keys: KeyProvider | None = None
    ) -> SealedStore:
        """``store`` sealed under the configured keyring (an already sealed store is returned)."""
        if isinstance(store, SealedStore):
            return store
        keys = keys if keys is not None else open_keys(settings)
        return cls(store, keys=keys, settings=settings.seal)

    @property
    def inner(self) -> ObjectStore:
        return self._inner

    @property
    def bucket(self) -> str:
        return self._inner.bucket

    def identity(self, key: str) -> ObjectIdentity:
        return ObjectIdentity(self._inner.bucket, key, META_RECORD_PREFIX + key)

    def ensure_compliant(self) -> None:
        self._inner.ensure_compliant()

    def put_locked(
        self, key: str, data: bytes, *, retain_until: datetime, expect_new: bool = False
    ) -> PutResult:
        """``expect_new``: skip the lookup and rely on the conditional create (one round trip
        less when the key is almost always free); an existing object is then found by the
        conflict, and compared the same way."""
        existing = None if expect_new else self._inner.latest(key)
        if existing is not None:
            return self._existing(existing, data)
        sealed = seal(data, identity=self.identity(key), keys=self._keys, settings=self._settings)
        try:
            put = self._inner.put_locked(key, sealed, retain_until=retain_until)
        except ObjectConflictError:  # another writer won the race between latest() and our put
            raced = self._inner.latest(key)
            if raced is None:
                raise
            return self._existing(raced, data)
        return PutResult(key, put.version_id, sha256_hex(data), len(data), created=put.created)

    def create(self, key: str, data: bytes) -> str | None:
        """:class:`~archive.store.ClaimStore`'s conditional create, of ``data`` sealed (the run
        leases: small, but the bucket sees no plaintext)."""
        if not isinstance(self._inner, ClaimStore):
            raise StoreError(f"{type(self._inner).__name__} cannot create objects conditionally")
        sealed = seal(data, identity=self.identity(key), keys=self._keys, settings=self._settings)
        return self._inner.create(key, sealed)

    def get(self, key: str, *, version_id: str) -> bytes:
        sealed = self._inner.get(key, version_id=version_id)
        return unseal(sealed, identity=self.identity(key), keys=self._keys, settings=self._settings)

    def head(self, key: str, *, version_id: str) -> ObjectHead:
        return replace(self._inner.head(key, version_id=version_id), sha256=None)

    def latest(self, key: str) -> ObjectHead | None:
        head = self._inner.latest(key)
        return None if head is None else replace(head, sha256=None)

    def list_versions(self, prefix: str = "", *, start_after: str = "") -> Iterator[ObjectVersion]:
        return self._inner.list_versions(prefix, start_after=start_after)

    def extend_retention(self, key: str, *, version_id: str, retain_until: datetime) -> None:
        self._inner.extend_retention(key, version_id=version_id, retain_until=retain_until)

    def set_legal_hold(self, key: str, *, version_id: str, on: bool) -> None:
        self._inner.set_legal_hold(key, version_id=version_id, on=on)

    def delete_version(self, key: str, *, version_id: str) -> None:
        self._inner.delete_version(key, version_id=version_id)

    def _existing(self, existing: ObjectHead, data: bytes) -> PutResult:
        """The version already under the key, if it opens to exactly ``data``."""
        key, version_id = existing.key, existing.version_id
        try:
            plaintext = self.get(key, version_id=version_id)
        except SealError as e:
            raise ObjectConflictError(
                f"{key} (version {version_id}) already exists but does not open "
                f"({type(e).__name__}); nothing was overwritten. Check which process wrote it"
            ) from e
        digest = hashlib.sha256(data).digest()
        if hashlib.sha256(plaintext).digest() != digest:
            raise ObjectConflictError(
                f"{key} (version {version_id}) already holds different content; nothing was "
                "overwritten"
            )
        return PutResult(key, version_id, digest.hex(), len(data), created=False)

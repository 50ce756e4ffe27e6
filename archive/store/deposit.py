"""Deposit a document: seal it, store it once under a COMPLIANCE lock, and read it back.

The write path's last step before the catalog. Sealing is randomised (a fresh data key per
object), so a retried or resumed deposit can never produce the same bytes twice: create-once
semantics therefore come from the key, not the bytes. When the key already holds an object, we
open it and let the caller decide whether it is the same document (``accept_existing``); an
accepted object is adopted, anything else is a conflict the operator must look at. Nothing is
ever overwritten.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from archive.core.errors import ObjectConflictError, SealError
from archive.core.settings import SealSettings
from archive.seal import KekRef, KeyProvider, ObjectIdentity, read_header, seal, unseal
from archive.store.base import COMPLIANCE, ObjectHead, ObjectStore

Acceptance = Callable[[bytes], bool]


@dataclass(frozen=True, slots=True)
class Deposit:
    """Where a document landed and what the catalog must record about it."""

    key: str
    version_id: str
    sealed_sha256: str
    sealed_size: int
    kek: KekRef
    format_version: int
    retain_until: datetime
    created: bool  # False: an earlier attempt had stored it and it was adopted
    # The plaintext found and accepted when adopting, so callers need not fetch it again.
    adopted_document: bytes | None = field(default=None, repr=False)


def deposit(
    document: bytes,
    *,
    identity: ObjectIdentity,
    retain_until: datetime,
    store: ObjectStore,
    keys: KeyProvider,
    settings: SealSettings,
    accept_existing: Acceptance | None = None,
) -> Deposit:
    """Seal and store ``document`` once; adopt an earlier identical deposit instead of failing.

    ``accept_existing`` decides whether an object already under the key is this document (by
    default: byte-identical plaintext). The check runs before sealing, and again if another
    writer wins the race between that check and our create.
    """
    accept = accept_existing or _same_bytes(document)
    existing = store.latest(identity.key)
    if existing is not None:
        return adopt(
            existing,
            identity=identity,
            retain_until=retain_until,
            store=store,
            keys=keys,
            settings=settings,
            accept=accept,
        )
    sealed = seal(document, identity=identity, keys=keys, settings=settings)
    try:
        put = store.put_locked(identity.key, sealed, retain_until=retain_until)
    except ObjectConflictError:
        raced = store.latest(identity.key)
        if raced is None:
            raise
        return adopt(
            raced,
            identity=identity,
            retain_until=retain_until,
            store=store,
            keys=keys,
            settings=settings,
            accept=accept,
        )
    header = read_header(sealed)
    # created=False here means our own earlier attempt landed (its response was lost): the
    # stored document is this one, byte for byte.
    return Deposit(
        put.key,
        put.version_id,
        put.sha256,
        put.size,
        header.kek,
        header.format_version,
        retain_until,
        created=put.created,
        adopted_document=None if put.created else document,
    )


def adopt(
    existing: ObjectHead,
    *,
    identity: ObjectIdentity,
    retain_until: datetime,
    store: ObjectStore,
    keys: KeyProvider,
    settings: SealSettings,
    accept: Acceptance,
) -> Deposit:
    """Take over an object stored by an earlier attempt, if it opens and is accepted.

    Its lock is extended when it is shorter than required (never shortened: the store refuses).
    """
    sealed = store.get(identity.key, version_id=existing.version_id)
    try:
        plaintext = unseal(sealed, identity=identity, keys=keys, settings=settings)
    except SealError as e:
        raise ObjectConflictError(
            f"{identity.key} (version {existing.version_id}) already exists but does not open "
            f"({type(e).__name__}); nothing was overwritten. Run verification on this key"
        ) from e
    if not accept(plaintext):
        raise ObjectConflictError(
            f"{identity.key} (version {existing.version_id}) already holds a different document; "
            "nothing was overwritten. Compare it with the source before re-archiving"
        )
    current = existing.lock.retain_until
    # A version stored without a COMPLIANCE lock (another tool, a GOVERNANCE default) is put
    # under COMPLIANCE now: PutObjectRetention sets the mode as well as the date.
    target = retain_until if current is None else max(current, retain_until)
    if existing.lock.mode != COMPLIANCE or current != target:
        store.extend_retention(identity.key, version_id=existing.version_id, retain_until=target)
    retain_until = target
    header = read_header(sealed)
    return Deposit(
        identity.key,
        existing.version_id,
        hashlib.sha256(sealed).hexdigest(),
        len(sealed),
        header.kek,
        header.format_version,
        retain_until,
        created=False,
        adopted_document=plaintext,
    )


def withdraw(
    *,
    identity: ObjectIdentity,
    version_id: str,
    store: ObjectStore,
    keys: KeyProvider,
    settings: SealSettings,
) -> bytes:
    """Fetch one exact version and open it; raises rather than return unauthenticated bytes."""
    sealed = store.get(identity.key, version_id=version_id)
    return unseal(sealed, identity=identity, keys=keys, settings=settings)


def _same_bytes(document: bytes) -> Acceptance:
    digest = hashlib.sha256(document).digest()
    return lambda plaintext: hashlib.sha256(plaintext).digest() == digest

"""Ad-hoc sealed files (`emr-archive put | get`): the foundation's end-to-end proof.

A file goes through the same deposit path as a record (seal, create-once PUT under a COMPLIANCE
lock) and is read back and compared before the command reports success.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from archive import wiring
from archive.core.atomic import write_private
from archive.core.errors import ObjectNotFoundError, SealError
from archive.core.settings import Settings
from archive.seal import ObjectIdentity
from archive.store import Deposit, deposit, file_key, withdraw


@dataclass(frozen=True, slots=True)
class PutReceipt:
    deposit: Deposit
    lock_until: datetime
    sha256: str


def identity_for(settings: Settings, record_id: str) -> ObjectIdentity:
    keys = wiring.open_keyring(settings)
    return ObjectIdentity(
        settings.s3.bucket, file_key(token=keys.record_token(record_id)), record_id
    )


def put_file(
    settings: Settings, data: bytes, *, record_id: str, retain_until: datetime
) -> PutReceipt:
    keys = wiring.open_keyring(settings)
    store = wiring.open_store(settings)
    identity = identity_for(settings, record_id)
    receipt = deposit(
        data,
        identity=identity,
        retain_until=retain_until,
        store=store,
        keys=keys,
        settings=settings.seal,
    )
    back = withdraw(
        identity=identity,
        version_id=receipt.version_id,
        store=store,
        keys=keys,
        settings=settings.seal,
    )
    if back != data:
        raise SealError("the stored file read back differently; it was not changed, investigate")
    lock = store.head(identity.key, version_id=receipt.version_id).lock
    return PutReceipt(receipt, lock.retain_until or retain_until, hashlib.sha256(data).hexdigest())


def get_file(settings: Settings, *, record_id: str, version_id: str | None, out: Path) -> int:
    keys = wiring.open_keyring(settings)
    store = wiring.open_store(settings, read_only=True)
    identity = identity_for(settings, record_id)
    if version_id is None:
        latest = store.latest(identity.key)
        if latest is None:
            raise ObjectNotFoundError("no file stored under that record id")
        version_id = latest.version_id
    data = withdraw(
        identity=identity, version_id=version_id, store=store, keys=keys, settings=settings.seal
    )
    write_private(out, data)
    return len(data)

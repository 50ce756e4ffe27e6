"""What binds a chain's local files to the keyring: a sealed HEAD and keyed segment digests.

The hash chain proves that no event before HEAD was edited, removed or reordered, but anyone who
can write the local directory could chain a segment on and move HEAD to it: a back-dated grant
or a ``hold.released`` would then look genuine and be locked by the next append. So HEAD carries
``mac``, an HMAC-SHA256 under the keyring's chain key (:meth:`ArchiveKeys.chain_key`) over the
chain's bucket prefix and HEAD's other fields: without the keyring no HEAD verifies.

Before an append writes its segment it writes an *intent* HEAD: the current newest event plus
``pending``, the name and SHA-256 of the segment about to be written. A process killed before it
moves HEAD on leaves a segment that a sealed HEAD announced, so the next append can tell it from
a forged one and finish it.

A sealed HEAD can still be replayed (an old copy put back after deleting the newest segment);
that is what the bucket is for: each segment's locked copy is named
``<prefix><segment>.<digest>.jsonl``, the digest an HMAC of the segment's plaintext under the
same key, so one LIST of the prefix, COMPLIANCE-locked, is an index of every segment ever
written that the local files are compared with both ways (:mod:`archive.audit.bucket`), without
reading a single object. Keyed, so the names say nothing about the (sealed) content and a
writer without the keyring cannot name a copy that matches a forged segment.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from archive.core.atomic import write_private
from archive.core.errors import AuditChainError
from archive.core.settings import Settings
from archive.seal import open_keys

# A segment's bucket copy; releases before keyed names wrote ``<segment>.jsonl`` (no digest).
OBJECT_NAME: Final = re.compile(r"([0-9]{10})(?:\.([0-9a-f]{64}))?\.jsonl")


def canonical(record: Mapping[str, Any]) -> bytes:
    """One deterministic JSON line: the bytes a record's hash is taken over."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class Head:
    """What HEAD names: the newest event, and the segment an append announced, if any.

    ``sealed`` is False for a HEAD written before HEADs carried a mac: it is believed only when
    the bucket holds every local segment (:class:`archive.audit.SegmentChain` checks)."""

    seq: int
    sha256: str
    pending: Mapping[str, str] | None
    sealed: bool


def write_head(
    path: Path,
    *,
    key: bytes,
    prefix: str,
    seq: int,
    prev: str,
    pending: Mapping[str, str] | None = None,
) -> None:
    fields: dict[str, Any] = {"seq": seq, "sha256": prev}
    if pending is not None:
        fields["pending"] = dict(pending)
    fields["mac"] = _mac(key, b"head", prefix, canonical(fields))
    write_private(path, canonical(fields))


def read_head(path: Path, *, key: bytes, prefix: str) -> Head:
    """HEAD as written; a ``mac`` that does not verify is an AuditChainError."""
    try:
        fields = json.loads(path.read_bytes())
    except ValueError as e:
        raise AuditChainError(f"{path} is not JSON: it was edited or truncated") from e
    if not isinstance(fields, dict):
        raise AuditChainError(f"{path} is not a JSON object")
    mac = fields.pop("mac", None)
    if mac is not None and not (
        isinstance(mac, str)
        and hmac.compare_digest(mac, _mac(key, b"head", prefix, canonical(fields)))
    ):
        raise AuditChainError(
            f"{path} does not carry this keyring's seal: HEAD was rewritten outside the "
            "archive (or the keyring is not this archive's); compare with the locked bucket copies"
        )
    pending = fields.get("pending")
    return Head(fields.get("seq", -1), fields.get("sha256", ""), pending, sealed=mac is not None)


def segment_digest(key: bytes, prefix: str, name: str, data: bytes) -> str:
    """Keyed digest of a segment's plaintext, bound to its chain and place in it."""
    return _mac(key, b"segment", prefix + name, data)


def object_key(prefix: str, name: str, digest: str) -> str:
    """``<prefix>0000000001.<digest>.jsonl`` for the local segment ``0000000001.jsonl``."""
    return f"{prefix}{name.removesuffix('.jsonl')}.{digest}.jsonl"


def configured_chain_key(settings: Settings) -> bytes:
    """The configured keyring's chain key: every chain built from settings is sealed with it."""
    return open_keys(settings).chain_key()


def _mac(key: bytes, domain: bytes, prefix: str, data: bytes) -> str:
    # The prefix is in the message so one chain's HEAD or digest never verifies as another's.
    message = domain + b"\x00" + prefix.encode() + b"\x00" + data
    return hmac.new(key, message, hashlib.sha256).hexdigest()

"""The hash chain: which manifest follows which, and what vouches for the newest one.

Manifest ``n`` records in its Parquet metadata the sha256 of manifest ``n-1``'s file bytes (64
zeros for the first), its own sequence number and its row count; ``HEAD`` (:class:`HeadRecord`)
records the sha256 of the newest, which has no successor to vouch for it. So every byte of every
manifest is vouched for by a later record:

- one altered byte: the manifest no longer parses (ManifestCorruptError), or the next manifest's
  recorded hash (ChainBrokenError) or, for the newest, HEAD's (ManifestCorruptError) differs.
  Data pages also carry Parquet CRC32 checksums, verified whenever rows are read.
- removed, renamed, reordered or duplicated manifests: names must run 1..N without a gap and each
  file must record the sequence number its name says; HEAD must name the newest (ChainBrokenError).

These are the pure rules, applied alike to the local directory and to the bucket copies: bytes
and what was already verified in, a verified :class:`ManifestInfo` or a precise error out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from archive.catalog.codec import decode_header
from archive.catalog.naming import (
    CATALOG_FORMAT_VERSION,
    GENESIS_SHA256,
    REBUILD_HINT,
    hint_for,
    manifest_key,
    manifest_name,
)
from archive.catalog.schema import HEX64
from archive.core.errors import ChainBrokenError, ManifestCorruptError


@dataclass(frozen=True, slots=True, kw_only=True)
class ManifestInfo:
    """One verified manifest: its header plus the sha256 and size of its file bytes."""

    seq: int
    sha256: str
    size: int
    run_id: str
    created_at: datetime
    row_count: int
    prev_sha256: str

    @property
    def name(self) -> str:
        return manifest_name(self.seq)

    @property
    def key(self) -> str:
        return manifest_key(self.seq)


def link_manifest(prev: ManifestInfo | None, seq: int, data: bytes, *, label: str) -> ManifestInfo:
    """Verify that ``data`` is manifest ``seq`` and follows ``prev``; ``label`` names it."""
    header = decode_header(data, name=label)
    if header.seq != seq:
        raise ChainBrokenError(
            f"{label} records sequence number {header.seq}, not {seq}: manifests were renamed, "
            f"reordered or copied; {hint_for(label)}"
        )
    expected = prev.sha256 if prev is not None else GENESIS_SHA256
    if header.prev_sha256 != expected:
        before = prev.name if prev is not None else "genesis (64 zeros)"
        raise ChainBrokenError(
            f"{label} records the previous manifest's sha256 as {header.prev_sha256[:16]}..., but "
            f"the previous manifest {before} hashes to {expected[:16]}...: one of the two was "
            f"altered or replaced; do not append; {hint_for(label)}"
        )
    return ManifestInfo(
        seq=seq,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        run_id=header.run_id,
        created_at=header.created_at,
        row_count=header.row_count,
        prev_sha256=header.prev_sha256,
    )


def check_sequence(seqs: Iterable[int], *, where: str, start: int = 1) -> list[int]:
    """``seqs`` sorted, which must run ``start``..N without a gap (``where`` prefixes names in
    errors)."""
    ordered = sorted(seqs)
    for expected, seq in enumerate(ordered, start=start):
        if seq != expected:
            raise ChainBrokenError(
                f"{where}{manifest_name(expected)} is missing (the next present is "
                f"{manifest_name(seq)}): a manifest was deleted or renamed; {hint_for(where)}"
            )
    return ordered


@dataclass(frozen=True, slots=True, kw_only=True)
class HeadRecord:
    """The newest manifest's sequence number and sha256: the one hash no later manifest holds."""

    seq: int
    sha256: str

    def encode(self) -> bytes:
        record = {
            "catalog_format": CATALOG_FORMAT_VERSION,
            "manifest": manifest_name(self.seq),
            "seq": self.seq,
            "sha256": self.sha256,
        }
        return json.dumps(record, sort_keys=True).encode() + b"\n"

    @classmethod
    def decode(cls, data: bytes, *, label: str) -> HeadRecord:
        try:
            raw = json.loads(data)
            head = cls(seq=raw["seq"], sha256=raw["sha256"])
            ok = raw["catalog_format"] == CATALOG_FORMAT_VERSION and type(head.seq) is int
            ok = ok and head.seq >= 1 and raw["manifest"] == manifest_name(head.seq)
        except (ValueError, KeyError, TypeError) as e:
            raise ChainBrokenError(
                f"{label} is unreadable ({type(e).__name__}); {REBUILD_HINT}"
            ) from e
        if not ok or not isinstance(head.sha256, str) or not HEX64.fullmatch(head.sha256):
            raise ChainBrokenError(f"{label} is malformed; {REBUILD_HINT}")
        return head


def check_head(head: HeadRecord | None, manifests: Sequence[ManifestInfo], *, where: str) -> bool:
    """Check HEAD against the verified ``manifests``. True when the newest manifest is *pending*:
    written, but a crash came before HEAD was updated (HEAD names the one before it)."""
    head_seq, n = (head.seq if head else 0), len(manifests)
    if head_seq > n:
        raise ChainBrokenError(
            f"HEAD names manifest {manifest_name(head_seq)} but the newest present is "
            f"{manifest_name(n) if n else 'none'}: newer manifests were deleted; {REBUILD_HINT}"
        )
    if head_seq < n - 1:
        raise ChainBrokenError(
            f"HEAD names manifest {manifest_name(head_seq) if head_seq else 'none'} but "
            f"manifests up to {manifest_name(n)} are present: HEAD was deleted or replaced by "
            f"an old copy, or manifests were added by hand; {REBUILD_HINT} and compare"
        )
    if head is not None and manifests[head_seq - 1].sha256 != head.sha256:
        raise ManifestCorruptError(
            f"{where}{manifest_name(head_seq)} does not match the sha256 recorded in HEAD: the "
            f"manifest (or HEAD) was altered; {REBUILD_HINT} and compare"
        )
    return head_seq == n - 1

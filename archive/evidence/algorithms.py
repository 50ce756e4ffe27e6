"""Hash algorithms of evidence records: their names, and when each stops being relied on.

Names are asn1crypto's (``sha256``, ``sha3_512``), which are also hashlib's, so an algorithm
read from a record hashes with no mapping table of our own. The weak-algorithm table is policy,
not code: the caller passes it in (from settings, or a test's own dates).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from archive.core.errors import EvidenceFormatError

__all__ = ["SUPPORTED", "WeakAlgorithms", "digest", "hasher_for"]

# The algorithms a record may use: what RFC 4998 deployments (BSI TR-ESOR, DSS) accept, plus
# SHA-224 which the Fujitsu vectors use. MD5 and SHA-1 stay out on purpose: a record built on
# them proves nothing today, and one read with them is malformed rather than silently weak.
SUPPORTED = frozenset(
    {"sha224", "sha256", "sha384", "sha512", "sha3_224", "sha3_256", "sha3_384", "sha3_512"}
)


def hasher_for(algorithm: str) -> str:
    """The hashlib name for a record's algorithm, or :class:`EvidenceFormatError`."""
    if algorithm not in SUPPORTED:
        raise EvidenceFormatError(f"hash algorithm {algorithm!r} is not one evidence records use")
    return algorithm


def digest(algorithm: str, data: bytes) -> bytes:
    return hashlib.new(hasher_for(algorithm), data).digest()


@dataclass(frozen=True)
class WeakAlgorithms:
    """Algorithm → the moment from which it is no longer relied on (aware datetimes).

    An algorithm absent from the table is never weak; one present is weak for any reliance at
    or after its date. Hash algorithms of chains, of timestamp imprints and of the TSA's signer
    digest are all looked up here (``md5``, ``sha1``, ``sha256``, ...).
    """

    since: Mapping[str, datetime] = field(default_factory=dict)

    def weak_at(self, algorithm: str, moment: datetime) -> bool:
        cutoff = self.since.get(algorithm)
        return cutoff is not None and moment >= cutoff

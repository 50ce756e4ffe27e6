"""Hash algorithms of evidence records: their names, and when each stops being relied on.

Names are asn1crypto's (``sha256``, ``sha3_512``), which are also hashlib's, so an algorithm
read from a record hashes with no mapping table of our own. The weak-algorithm table is policy,
not code: the caller passes it in (from settings, or a test's own dates).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time

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

    @classmethod
    def parse(cls, entries: Iterable[str]) -> WeakAlgorithms:
        """The table from ``algorithm:YYYY-MM-DD`` entries (a setting's form): weak from that
        day's first instant, UTC. Raises ValueError on an entry that is not one, an algorithm
        hashlib does not know (a typo would otherwise make nothing weak) or a repeated one."""
        since: dict[str, datetime] = {}
        for entry in entries:
            name, sep, day = entry.partition(":")
            name = name.strip().lower().replace("-", "")
            if not sep or name not in _KNOWN:
                raise ValueError(f"{entry!r} is not 'algorithm:YYYY-MM-DD' with a known hash")
            if name in since:
                raise ValueError(f"{name} is listed twice")
            since[name] = datetime.combine(date.fromisoformat(day.strip()), time(), tzinfo=UTC)
        return cls(since)


# hashlib's names, which are asn1crypto's for the SHA-2/SHA-3 families, plus the legacy ones
_KNOWN = frozenset({"md5", "sha1", *SUPPORTED})

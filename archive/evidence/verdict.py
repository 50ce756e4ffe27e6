"""The outcome of judging an evidence record, and the data objects it is judged against."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from archive.evidence.algorithms import digest

__all__ = [
    "CHAIN_BROKEN",
    "EXPIRED",
    "MALFORMED",
    "NOT_COVERED",
    "WEAK_ALGORITHM",
    "DataObject",
    "EvidenceVerdict",
]

# Reasons a records officer can act on (issue #12 item 4); ``evidence.missing`` belongs to the
# caller, which knows whether a record ought to have evidence at all.
NOT_COVERED: Final = "evidence.not_covered"  # the document is not what was timestamped
CHAIN_BROKEN: Final = "evidence.chain_broken"  # a root, a renewal link or a token is wrong
EXPIRED: Final = "evidence.expired"  # a timestamp was not renewed before its TSA lapsed
WEAK_ALGORITHM: Final = "evidence.weak_algorithm"  # relied on a hash after it weakened
MALFORMED: Final = "evidence.malformed"  # not an evidence record we can read


@dataclass(frozen=True)
class DataObject:
    """An archived data object, by its bytes or by its digests (algorithm → digest).

    A hash-tree renewal needs the object's digest in each chain's algorithm, so a caller that
    holds only digests must supply every one the record's chains use.
    """

    data: bytes | None = None
    digests: Mapping[str, bytes] = field(default_factory=dict)

    def digest(self, algorithm: str) -> bytes | None:
        known = self.digests.get(algorithm)
        if known is not None:
            return known
        return None if self.data is None else digest(algorithm, self.data)


@dataclass(frozen=True)
class EvidenceVerdict:
    """``code`` None means the record proves the objects existed at ``proven_at`` (the first
    timestamp's time) and that proof still held at the as-of moment; otherwise ``code`` is one
    of the reasons above and ``detail`` says which timestamp and why (never document content).
    """

    code: str | None
    detail: str
    proven_at: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.code is None

"""The seam through which a run learns each record's retention class and lock date.

The pipeline does not know the law: it asks a :class:`Classifier` (the retention package's policy,
wired in by whoever starts the run) and locks the record until the date it answers. The classifier
is pickled into every worker process, so it must hold plain data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from archive.sources import EncounterBundle


@dataclass(frozen=True, slots=True)
class RetentionDecision:
    """The class a record is kept under and the end of its COMPLIANCE lock (tz-aware)."""

    class_id: str
    retain_until: datetime


class Classifier(Protocol):
    """Says how long an encounter must be kept; raises ``ValueError`` or an ``ArchiveError`` for a
    record it cannot classify (that record fails, the batch goes on)."""

    def decide(self, bundle: EncounterBundle) -> RetentionDecision: ...

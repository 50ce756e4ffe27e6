"""The sample's answer key: what was planted, and what a correct collector must return.

Tests and benchmarks compare the collector's output with a :class:`SampleSummary` rather than
with hand-counted numbers, so the key is built by the generator as it writes, from the same
decisions. :data:`EXPECTED_REASON` maps each planted :class:`BadKind` to the quarantine reason
the collector must give it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Final

from archive.sources import QuarantineReason


class BadKind(StrEnum):
    """The kinds of bad records planted, one per bad encounter."""

    MALFORMED_JSON = "malformed-json"  # a line of the encounter is cut, broken or not UTF-8
    UNRESOLVED_REFERENCE = "unresolved-reference"  # its Patient or a diagnosis Condition missing
    MISSING_PERIOD_END = "missing-period-end"  # finished without period.end
    INVALID_ICD10 = "invalid-icd10"  # a Condition with a code that is not ICD-10
    PATH_SEPARATOR_ID = "path-separator-id"  # "../x", "..\\x", "a/x" as an id
    CONTROL_CHARACTERS = "control-characters"  # BEL, ESC, bidi override, raw control byte
    CONFUSABLE_ID = "confusable-id"  # Cyrillic look-alike or zero-width character in an id


EXPECTED_REASON: Final = {
    BadKind.MALFORMED_JSON: QuarantineReason.MALFORMED_JSON,
    BadKind.UNRESOLVED_REFERENCE: QuarantineReason.UNRESOLVED_REFERENCE,
    BadKind.MISSING_PERIOD_END: QuarantineReason.MISSING_PERIOD_END,
    BadKind.INVALID_ICD10: QuarantineReason.INVALID_ICD10,
    BadKind.PATH_SEPARATOR_ID: QuarantineReason.INVALID_ID,
    BadKind.CONTROL_CHARACTERS: QuarantineReason.CONTROL_CHARACTERS,
    BadKind.CONFUSABLE_ID: QuarantineReason.INVALID_ID,
}


@dataclass(frozen=True, slots=True)
class Planted:
    """One bad encounter: its (possibly bad) id and the type of its separate bad line, if any
    (``None`` when the Encounter line itself is the bad one, or nothing is bad but a reference)."""

    kind: BadKind
    encounter_id: str
    bad_line_type: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SampleSummary:
    """What was written, and what a correct collector must return for ``Window.for_day(day)``."""

    out_dir: Path
    day: date
    tz: str
    seed: int
    encounters: int  # Encounter resources written (every status, good and bad)
    in_window: tuple[str, ...]  # good finished encounters ending on `day`: the bundles, sorted
    outside_window: int  # good finished encounters ending the day before or after
    not_finished: int
    planted: tuple[Planted, ...]
    orphan_lines: int  # malformed lines that belong to no known encounter
    files: tuple[str, ...]
    size_bytes: int  # all NDJSON files together

    def bad_counts(self) -> dict[BadKind, int]:
        counts = Counter(p.kind for p in self.planted)
        return {kind: counts[kind] for kind in BadKind}

    @property
    def expected_line_entries(self) -> int:
        """LINE quarantine entries: one per separate bad line, one per orphan line."""
        return sum(p.bad_line_type is not None for p in self.planted) + self.orphan_lines

"""The policy as values: classes, rules and their matchers, checked once by the loader.

Kept apart from the loader so that everything downstream (classification, lock dates, upgrades,
disposition) depends on these frozen types only, never on TOML. :class:`Probe` is a record's facts
in the canonical form the rules compare, built once per classification.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final

from retention.errors import PolicyError
from retention.facts import RecordFacts, code_key, icd10_key, procedure_key

# The kinds of matcher a rule may have, with the words a classification's reason uses for them.
MATCHERS: Final = {
    "icd10": "ICD-10 diagnosis",
    "procedures": "ICD-9-CM procedure",
    "accident_codes": "accident code MA_TAI_NAN",
    "treatment_results": "treatment result KET_QUA_DTRI",
    "discharge_dispositions": "discharge disposition",
    "encounter_classes": "encounter class",
    "deceased": "patient deceased",
    "incident_file": "incident-resolution file",
}
# The longest period a class may state. The shipped policy's periods run from 5 to 30 years
# (TT 33/2025/TT-BYT), beside permanent classes; a larger number is a typo, or "permanent" written
# as a number, which would then be treated as a period that ends (disposition would one day
# propose the record). Permanence is ``permanent = true``, so catalog and disposition know it.
MAX_PERIOD_YEARS: Final = 100
# How far ahead a permanent record is locked. Object Lock needs a date, and the lock is
# re-extended well before it ends; more than this is no longer a horizon but a date nobody will
# check (and far enough out, e.g. 10,000 years, not a date at all: every lock would fail).
MAX_HORIZON_YEARS: Final = 200
_TOP: Final = "\U0010ffff"  # sorts after every character: "F99" + _TOP bounds F99 and its children


@dataclass(frozen=True, slots=True)
class CodeRange:
    """An inclusive range of codes with their children: "F00-F99", "Y96", "55.6", "Z52.1-Z52.2"."""

    text: str
    low: str
    high: str  # the last code plus _TOP, so "F99.9" is inside "F00-F99"

    @classmethod
    def spanning(cls, text: str, low: str, last: str) -> CodeRange:
        """The range from ``low`` to ``last`` and every child code of ``last``."""
        return cls(text, low, last + _TOP)

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and self.low <= code <= self.high

    def overlaps(self, other: CodeRange) -> bool:
        return self.low <= other.high and other.low <= self.high


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionClass:
    class_id: str
    years: int | None  # None: permanent
    title: str
    legal_basis: str  # e.g. "TT 33/2025/TT-BYT, phụ lục, dòng 44"
    secondary: bool  # the figure comes from secondary notes (2°): verify against the text
    note: str

    @property
    def is_permanent(self) -> bool:
        return self.years is None


@dataclass(frozen=True, slots=True)
class Probe:
    """A record's facts as the rules compare them: canonical codes, case-folded labels."""

    icd10: tuple[str, ...]
    procedures: tuple[str, ...]
    accident: str | None
    result: str | None
    disposition: str | None
    encounter: str | None
    deceased: bool
    incident_file: bool

    @classmethod
    def of(cls, facts: RecordFacts) -> Probe:
        disposition = code_key(facts.discharge_disposition)
        encounter = code_key(facts.encounter_class)
        return cls(
            icd10=tuple(icd10_key(c) for c in facts.icd10_codes),
            procedures=tuple(procedure_key(c) for c in facts.procedure_codes),
            accident=code_key(facts.accident_code),
            result=code_key(facts.treatment_result),
            disposition=disposition.lower() if disposition else None,
            encounter=encounter.upper() if encounter else None,
            deceased=facts.deceased,
            incident_file=facts.incident_file,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """Assigns ``class_id`` to a record that matches ANY of its matchers."""

    rule_id: str
    class_id: str
    icd10: tuple[CodeRange, ...] = ()
    procedures: tuple[CodeRange, ...] = ()
    accident_codes: tuple[str, ...] = ()
    treatment_results: tuple[str, ...] = ()
    discharge_dispositions: tuple[str, ...] = ()
    encounter_classes: tuple[str, ...] = ()
    deceased: bool = False
    incident_file: bool = False

    def matches(self, probe: Probe) -> tuple[str, ...]:
        """The kinds of matcher that matched (empty when the rule does not apply)."""
        hits = {
            "icd10": any(c in r for r in self.icd10 for c in probe.icd10),
            "procedures": any(c in r for r in self.procedures for c in probe.procedures),
            "accident_codes": probe.accident in self.accident_codes,
            "treatment_results": probe.result in self.treatment_results,
            "discharge_dispositions": probe.disposition in self.discharge_dispositions,
            "encounter_classes": probe.encounter in self.encounter_classes,
            "deceased": self.deceased and probe.deceased,
            "incident_file": self.incident_file and probe.incident_file,
        }
        return tuple(kind for kind, hit in hits.items() if hit)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionPolicy:
    policy_id: str
    version: int
    title: str
    effective_from: date | None
    default_class: str
    permanent_horizon_years: int
    classes: tuple[RetentionClass, ...]  # in declaration order, which breaks ties of equal periods
    rules: tuple[Rule, ...]
    source: str
    sha256: str  # of the policy file's bytes: two files claiming one version can be told apart

    @property
    def ref(self) -> str:
        return f"{self.policy_id}@{self.version}"

    def retention_class(self, class_id: str) -> RetentionClass:
        for cls in self.classes:
            if cls.class_id == class_id:
                return cls
        known = ", ".join(c.class_id for c in self.classes)
        raise PolicyError(
            f"policy {self.ref} has no class {class_id!r} (it has: {known})", source=self.source
        )

    def rank(self, class_id: str) -> tuple[bool, int, int]:
        """Sort key: permanent first, then more years, then earlier declaration."""
        index = next(i for i, c in enumerate(self.classes) if c.class_id == class_id)
        cls = self.classes[index]
        return (cls.is_permanent, cls.years or 0, -index)

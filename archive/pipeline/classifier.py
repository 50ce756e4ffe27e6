"""The seam through which a run learns each record's retention class and lock date.

The pipeline does not know the law: it asks a :class:`Classifier` (the retention package's policy,
wired in by whoever starts the run) and locks the record until the date it answers. The classifier
is pickled into every worker process, so it must hold plain data.

A record the records department kept longer than its class (a retention upgrade, in the
retention register) keeps that retention when amended: the run asks
:meth:`Classifier.extensions` once per batch of changed catalogued records, in its own process,
and each amendment carries its extension to the worker in the bundle
(``EncounterBundle.extended_retention``), so the register never travels to the workers.
:func:`decide` is the one place both are combined: the longer of the two.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
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

    def extensions(self, encounter_ids: Collection[str]) -> Mapping[str, RetentionDecision]:
        """Of these catalogued encounters, those whose retention the records department
        extended beyond their class, with the extended class and date (read from an integrity
        checked register, once per run: called in the run's process only, never in a
        worker)."""
        ...


def decide(classifier: Classifier, bundle: EncounterBundle) -> RetentionDecision:
    """The record's class and lock date: the classifier's, or the extension the bundle carries
    when that runs longer (a lock is never shorter than the retention the record already has)."""
    decision = classifier.decide(bundle)
    if bundle.extended_retention is None:
        return decision
    kept = RetentionDecision(*bundle.extended_retention)
    return kept if kept.retain_until > decision.retain_until else decision

"""The retention policy as the archive pipeline's :class:`~archive.pipeline.Classifier`.

The write path must lock each record with its retention date, but ``archive`` may import no other
package of ours; so the pipeline names the interface it needs and this adapter, handed in by
whoever starts a run, answers it with :func:`~retention.policy.classify` and
:func:`~retention.policy.retain_until`.
"""

from __future__ import annotations

from dataclasses import dataclass

from archive.core.settings import Settings
from archive.pipeline.classifier import RetentionDecision
from archive.sources import EncounterBundle
from retention.facts import RecordFacts
from retention.policy import (
    RetentionPolicy,
    classification_for,
    classify,
    dossier_class,
    load_policy,
    retain_until,
)


@dataclass(frozen=True, slots=True)
class PolicyClassifier:
    """Classifies a collected encounter by the facts in its bundle (plain data: picklable)."""

    policy: RetentionPolicy

    @classmethod
    def from_settings(cls, settings: Settings) -> PolicyClassifier:
        """The configured policy file, or the shipped TT 33/2025 policy."""
        return cls(load_policy(settings.archive.retention_policy))

    def decide(self, bundle: EncounterBundle) -> RetentionDecision:
        classification = classify(RecordFacts.from_bundle(bundle), self.policy)
        if bundle.declared_retention_class is not None:
            # Stated by hand (a paper record's manifest): kept unless the facts give a longer one.
            declared = classification_for(self.policy, bundle.declared_retention_class)
            classification = dossier_class((declared, classification))
        until = retain_until(classification, discharged_at=bundle.discharged_at)
        return RetentionDecision(classification.class_id, until)

"""The retention policy as the archive pipeline's :class:`~archive.pipeline.Classifier`.

The write path must lock each record with its retention date, but ``archive`` may import no other
package of ours; so the pipeline names the interface it needs and this adapter, handed in by
whoever starts a run, answers it with :func:`~retention.policy.classify` and
:func:`~retention.policy.retain_until`.

It also answers what the retention register says the records department extended (upgrades:
``lock.extended``), so that an amendment of a record kept longer is locked as long, and is not
quarantined ``retention-ended`` while the extension runs. The register is read once, when the
classifier is built for a run, and checked as every reader checks it (the hash chain, the sealed
HEAD, the locked bucket copies): a register that does not verify stops the run before it
touches a record, since no record may gain, or lose, a retention on its word.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from archive.core.errors import AuditChainError
from archive.core.settings import Settings
from archive.pipeline.classifier import RetentionDecision
from archive.sources import EncounterBundle
from archive.store import S3ObjectStore
from retention.errors import RetentionError
from retention.facts import RecordFacts
from retention.policy import (
    RetentionPolicy,
    classification_for,
    classify,
    dossier_class,
    load_policy,
    retain_until,
)
from retention.register import Register, register_dir


@dataclass(frozen=True, slots=True)
class PolicyClassifier:
    """Classifies a collected encounter by the facts in its bundle (plain data: picklable).

    ``extended``: encounter id -> the class and date the register extended it to. It stays in
    the run's process: a pickled classifier (a worker's) holds the policy only, since each
    amendment carries its own extension in its bundle (a policy upgrade can extend every record
    of a class, which is no map to ship to every worker)."""

    policy: RetentionPolicy
    extended: Mapping[str, RetentionDecision] = field(default_factory=dict, compare=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> PolicyClassifier:
        """The configured policy file, or the shipped TT 33/2025 policy, and the extensions of
        the facility's retention register (none when it has no register yet)."""
        policy = load_policy(settings.archive.retention_policy)
        if not register_dir(settings).is_dir():
            return cls(policy)
        store = S3ObjectStore.from_settings(settings, read_only=True)
        return cls.from_register(policy, Register.for_settings(settings, store))

    @classmethod
    def from_register(cls, policy: RetentionPolicy, register: Register) -> PolicyClassifier:
        """``policy`` with the running extensions of ``register`` (one read, chain checked;
        records destroyed since are left out, as every register reader leaves them)."""
        try:
            gone = register.destroyed_encounters()
            changes = register.lock_changes()
        except AuditChainError as e:
            raise RetentionError(
                f"the retention register does not verify ({e}). A run cannot tell which "
                "records the records department kept longer than their class, so it archives "
                "nothing: run `emr-archive audit verify` and compare the register with its "
                "locked bucket copies"
            ) from e
        extended = {
            eid: RetentionDecision(class_id, until)
            for eid, (class_id, until) in changes.items()
            if eid not in gone
        }
        return cls(policy, extended)

    def __reduce__(self) -> tuple[Any, ...]:
        return (PolicyClassifier, (self.policy,))

    def decide(self, bundle: EncounterBundle) -> RetentionDecision:
        classification = classify(RecordFacts.from_bundle(bundle), self.policy)
        if bundle.declared_retention_class is not None:
            # Stated by hand (a paper record's manifest): kept unless the facts give a longer one.
            declared = classification_for(self.policy, bundle.declared_retention_class)
            classification = dossier_class((declared, classification))
        until = retain_until(classification, discharged_at=bundle.discharged_at)
        return RetentionDecision(classification.class_id, until)

    def extensions(self, encounter_ids: Collection[str]) -> Mapping[str, RetentionDecision]:
        return {e: self.extended[e] for e in encounter_ids if e in self.extended}

"""Retention governance: how long each record stays locked, and every change to that lock.

In: a record's facts (codes and dates, never a name: :class:`RecordFacts`) and the retention
policy (``policy.toml``, shipped or the hospital's own). Out: its retention class and the
retain-until date of its COMPLIANCE lock (:func:`classify`, :func:`retain_until`), which the
write path asks for through :class:`PolicyClassifier`.

Holds, upgrades and disposition change lock state only (a legal hold set or cleared, a lock
extended, an expired version deleted after a second person approves); they never rewrite a
record. The :class:`Register` records every such change in a hash-chained locked log, which the
verifier reads (:func:`lock_expectations`) to know which holds and deletions to expect.
:class:`RetentionParts` opens everything a command or the sweep needs from settings.
"""

from retention.classifier import PolicyClassifier
from retention.disposition import SWEEP_ACTOR, Outcome, Proposal, approve, load_proposal
from retention.errors import PolicyError, RetentionError
from retention.facts import RecordFacts
from retention.holds import HoldScope, list_holds, place_hold, release_hold
from retention.minutes import read_minutes
from retention.parts import RetentionParts, lock_expectations
from retention.policy import (
    Classification,
    LockAction,
    RetentionPolicy,
    classify,
    load_policy,
    retain_until,
)
from retention.register import Register
from retention.upgrades import (
    UpgradePlan,
    apply_upgrade,
    facts_from_export,
    load_facts_file,
    plan_upgrade,
)

__all__ = [
    "SWEEP_ACTOR",
    "Classification",
    "HoldScope",
    "LockAction",
    "Outcome",
    "PolicyClassifier",
    "PolicyError",
    "Proposal",
    "RecordFacts",
    "Register",
    "RetentionError",
    "RetentionParts",
    "RetentionPolicy",
    "UpgradePlan",
    "apply_upgrade",
    "approve",
    "classify",
    "facts_from_export",
    "list_holds",
    "load_facts_file",
    "load_policy",
    "load_proposal",
    "lock_expectations",
    "place_hold",
    "plan_upgrade",
    "read_minutes",
    "release_hold",
    "retain_until",
]

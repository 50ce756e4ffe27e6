"""Retention policy: a policy file and a record's facts in; its class and lock date out.

Pure: nothing here reads the clock, the environment or the network. The only file read is the
policy itself, by :func:`load_policy` (``None`` loads the shipped ``retention/policy.toml``, whose
comments explain the format and the sources of every figure).

``model`` holds the frozen policy types; ``load`` turns a file into them (``reader`` for the
grammar, ``locator`` for line numbers) and refuses overlapping rules; ``classify`` gives a record
or dossier its longest class; ``locks`` turns a class into a retain-until date and says what a new
policy does to existing locks (extend them, never shorten them).
"""

from archive.core.timezones import DEFAULT_TZ
from retention.errors import PolicyError
from retention.facts import RecordFacts
from retention.policy.classify import Classification, classification_for, classify, dossier_class
from retention.policy.load import load_policy, parse_policy
from retention.policy.locks import (
    LockAction,
    LockChange,
    compare,
    is_expired,
    plan_lock,
    retain_until,
)
from retention.policy.model import CodeRange, RetentionClass, RetentionPolicy, Rule

__all__ = [
    "DEFAULT_TZ",
    "Classification",
    "CodeRange",
    "LockAction",
    "LockChange",
    "PolicyError",
    "RecordFacts",
    "RetentionClass",
    "RetentionPolicy",
    "Rule",
    "classification_for",
    "classify",
    "compare",
    "dossier_class",
    "is_expired",
    "load_policy",
    "parse_policy",
    "plan_lock",
    "retain_until",
]

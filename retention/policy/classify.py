"""Classification: a record's facts and the policy in, its retention class and the reason out.

A record takes the **longest** class among the rules it matches (permanent beats any number of
years; equal periods go to the class declared first); no match gives the policy's default class.
A dossier takes the longest class of its records. The reason names the policy, class, legal basis
and the rules that matched, never a code or a date, so it can be logged and stored with the record.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from retention.facts import RecordFacts
from retention.policy.model import MATCHERS, Probe, RetentionClass, RetentionPolicy


@dataclass(frozen=True, slots=True, kw_only=True)
class Classification:
    """A record's (or dossier's) retention class. ``reason`` never contains codes or dates."""

    class_id: str
    years: int | None  # None: permanent
    lock_years: int  # years for the Object Lock: ``years``, or the permanent horizon
    matched_rules: tuple[str, ...]
    reason: str

    def __post_init__(self) -> None:
        if self.lock_years < 1 or self.years not in (None, self.lock_years):
            raise ValueError("Classification.lock_years must be years, or >= 1 when permanent")

    @property
    def is_permanent(self) -> bool:
        return self.years is None


def classify(facts: RecordFacts, policy: RetentionPolicy) -> Classification:
    """The longest class among the rules ``facts`` match, else the policy's default class."""
    probe = Probe.of(facts)
    hits = [(rule, kinds) for rule in policy.rules if (kinds := rule.matches(probe))]
    if not hits:
        cls = policy.retention_class(policy.default_class)
        return _classification(policy, cls, (), "no rule matched, so the default class applies")
    winner = max({rule.class_id for rule, _ in hits}, key=policy.rank)
    because = "; ".join(
        f"rule {rule.rule_id} ({', '.join(MATCHERS[k] for k in kinds)}) gives {rule.class_id}"
        for rule, kinds in hits
    )
    tail = f"; the longest, {winner}, applies" if len({r.class_id for r, _ in hits}) > 1 else ""
    cls = policy.retention_class(winner)
    return _classification(policy, cls, tuple(r.rule_id for r, _ in hits), because + tail)


def classification_for(policy: RetentionPolicy, class_id: str) -> Classification:
    """A class assigned by the caller rather than by rules (treatment registers: ``register``)."""
    cls = policy.retention_class(class_id)
    return _classification(policy, cls, (), "assigned explicitly by the caller")


def _classification(
    policy: RetentionPolicy, cls: RetentionClass, rules: tuple[str, ...], why: str
) -> Classification:
    lock = cls.years if cls.years is not None else policy.permanent_horizon_years
    reason = (
        f"{policy.ref}: class {cls.class_id} ({_period(cls.years)}; {cls.legal_basis}"
        f"{' (2°)' if cls.secondary else ''}): {why}."
    )
    return Classification(
        class_id=cls.class_id, years=cls.years, lock_years=lock, matched_rules=rules, reason=reason
    )


def dossier_class(classifications: Iterable[Classification]) -> Classification:
    """A dossier keeps the longest class of its records (Archive Law 33/2024 art. 15); permanent
    beats any number of years; among equals the first given wins."""
    members = list(classifications)
    if not members:
        raise ValueError("a dossier needs at least one classified record")
    best = max(members, key=lambda c: (c.is_permanent, c.lock_years))  # max keeps the first
    rules = tuple(dict.fromkeys(r for c in members for r in c.matched_rules))
    counts: dict[str, int] = {}
    for c in members:
        counts[c.class_id] = counts.get(c.class_id, 0) + 1
    present = ", ".join(f"{k} x{n}" for k, n in counts.items())
    reason = (
        f"dossier of {len(members)} record(s) ({present}): the longest class, "
        f"{best.class_id} ({_period(best.years)}), applies to the whole dossier."
    )
    return Classification(
        class_id=best.class_id,
        years=best.years,
        lock_years=best.lock_years,
        matched_rules=rules,
        reason=reason,
    )


def _period(years: int | None) -> str:
    return "permanent" if years is None else f"{years} year{'s' if years != 1 else ''}"

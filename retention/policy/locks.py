"""Lock dates: when a classified record unlocks, and what a new policy does to a lock already set.

The count starts at the end of the local calendar year of discharge: discharged in year Y
(Asia/Ho_Chi_Minh) and kept N years means locked until 1 January Y+N+1, 00:00 local time. A
permanent class is locked ``permanent_horizon_years`` ahead, because Object Lock needs a date; it
stays recognisable through :attr:`Classification.is_permanent`.

A COMPLIANCE lock can be extended but never shortened, so :func:`plan_lock` and :func:`compare`
answer "extend" or "shorter rule, lock unchanged", never "shorten". Pure: ``now`` and the zone
are arguments; nothing here reads the clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from archive.core.timezones import DEFAULT_TZ
from archive.core.timezones import zone as time_zone
from retention.facts import RecordFacts
from retention.policy.classify import Classification, classify
from retention.policy.model import RetentionPolicy


def retain_until(
    classification: Classification, *, discharged_at: datetime, tz: str = DEFAULT_TZ
) -> datetime:
    """End of 31 December of (local discharge year + lock years), in UTC."""
    _aware(discharged_at=discharged_at)
    zone = time_zone(tz)
    year = discharged_at.astimezone(zone).year + classification.lock_years + 1
    return datetime(year, 1, 1, tzinfo=zone).astimezone(UTC)


def is_expired(retain_until: datetime, now: datetime) -> bool:
    """Whether the retention ending at ``retain_until`` is over at ``now``."""
    _aware(retain_until=retain_until, now=now)
    return now >= retain_until


def _aware(**moments: datetime) -> None:
    """Refuse a naive time: it has no year, and a lock date must not depend on a guessed zone."""
    for name, moment in moments.items():
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware")


class LockAction(StrEnum):
    EXTEND = "extend"  # the new date is later: extend the lock
    UNCHANGED = "unchanged"  # the new date is the current one
    KEEP_LONGER = "shorter rule, lock unchanged"  # the new date is earlier: never shortened

    @classmethod
    def between(cls, new_until: datetime, current: datetime) -> LockAction:
        """What a lock until ``current`` becomes when a rule says ``new_until``."""
        if new_until > current:
            return cls.EXTEND
        return cls.UNCHANGED if new_until == current else cls.KEEP_LONGER


@dataclass(frozen=True, slots=True, kw_only=True)
class LockChange:
    """What a new policy does to one record's lock."""

    old: Classification
    new: Classification
    old_retain_until: datetime
    new_retain_until: datetime
    current_retain_until: datetime  # the lock as it stands (by default the old policy's date)
    action: LockAction

    @property
    def retain_until(self) -> datetime:
        """The lock date after applying the change (never earlier than the current one)."""
        return max(self.current_retain_until, self.new_retain_until)

    @property
    def class_changed(self) -> bool:
        return self.old.class_id != self.new.class_id


def plan_lock(
    old_policy: RetentionPolicy,
    new_policy: RetentionPolicy,
    facts: RecordFacts,
    *,
    current_retain_until: datetime | None = None,
    tz: str = DEFAULT_TZ,
) -> LockChange:
    """Compare one record under two policies against its current lock date."""
    old, new = classify(facts, old_policy), classify(facts, new_policy)
    old_until = retain_until(old, discharged_at=facts.discharged_at, tz=tz)
    new_until = retain_until(new, discharged_at=facts.discharged_at, tz=tz)
    current = old_until if current_retain_until is None else current_retain_until
    _aware(current_retain_until=current)
    action = LockAction.between(new_until, current)
    return LockChange(
        old=old,
        new=new,
        old_retain_until=old_until,
        new_retain_until=new_until,
        current_retain_until=current,
        action=action,
    )


def compare(
    old_policy: RetentionPolicy,
    new_policy: RetentionPolicy,
    facts_iter: Iterable[RecordFacts],
    *,
    tz: str = DEFAULT_TZ,
) -> Iterator[LockChange]:
    """:func:`plan_lock` for each record, in order, assuming each lock is the old policy's date."""
    for facts in facts_iter:
        yield plan_lock(old_policy, new_policy, facts, tz=tz)

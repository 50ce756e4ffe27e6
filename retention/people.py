"""Who acts on retention, and the four-eyes rules the law puts on destruction and legal holds.

Retention imports only ``archive``: it does not know accounts. The caller (the command line,
which signs the person in through retrieval) passes each person in as an :class:`Actor`, the
account's name and the role that account really holds, and that role is what the register, the
audit log and the minutes record. The rules on those roles live here:

* a destruction is decided by the head of the facility or a delegate (:data:`APPROVING_ROLES`),
  never by the person who proposed or confirmed it;
* the monthly sweep (:data:`SWEEP`) is not a person: its proposal needs a person to confirm it
  before anyone may approve it;
* a legal hold is released only when a second person confirms the first one's request.

Every refusal is written to the audit log (outcome ``failure``) before it is raised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from archive.audit import AuditEvent, AuditLog
from retention.errors import RetentionError

SWEEP_ACTOR: Final = "retention-sweep"
# The role names of retrieval's accounts that may approve a destruction (the facility head and
# the delegate named in writing); retrieval's Role enum carries the same values.
APPROVING_ROLES: Final = frozenset({"facility-head", "facility-head-delegate"})


@dataclass(frozen=True, slots=True)
class Actor:
    """A person (or the sweep) acting on retention: account name and that account's role."""

    name: str
    role: str

    @property
    def is_person(self) -> bool:
        return bool(self.name.strip()) and not same_name(self.name, SWEEP_ACTOR)

    def is_(self, name: str) -> bool:
        return same_name(self.name, name)


SWEEP: Final = Actor(SWEEP_ACTOR, "system")


def same_name(a: str, b: str) -> bool:
    """One person under two spellings (``Lan`` / `` lan ``) is still one person."""
    return a.strip().casefold() == b.strip().casefold()


def refuse(
    audit: AuditLog,
    actor: Actor,
    action: str,
    now: datetime,
    problem: str,
    *,
    entities: Sequence[tuple[str, str]],
) -> RetentionError:
    """Audit a refused retention step and return the error for the caller to raise."""
    audit.append(
        AuditEvent(
            actor=actor.name.strip() or "(nobody)",
            role=actor.role,
            action=action,
            recorded=now,
            outcome="failure",
            entities=tuple(entities),
            reason=problem[:300],
        )
    )
    audit.flush(now=now)
    return RetentionError(problem)

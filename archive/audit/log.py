"""The tamper-evident audit log: who did what, when, to which records, with what outcome.

Every sensitive action (an archive run, a verification run, a hold, a retention change, a
disposition, a retrieval) is appended as an :class:`AuditEvent`, modelled on FHIR AuditEvent:
who (``actor``, ``role``), what (``action``, ``entities``), when (``recorded``), with what
``outcome`` and why (``reason``). PHI never enters an event: patients appear only as pseudonyms
(``p1_...``), records as encounter ids or object keys. Events are buffered and written as one
segment of a :class:`~archive.audit.chain.SegmentChain` per flush; :meth:`AuditLog.for_settings`
seals the segments' bucket copies under the configured keyring.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from archive.audit.chain import ChainReport, SegmentChain
from archive.audit.seal import configured_chain_key
from archive.core.settings import Settings
from archive.store import ObjectStore, SealedStore

AUDIT_PREFIX: Final = "audit/sealed/v1/segments/"
LEGACY_AUDIT_PREFIX: Final = "audit/segments/"  # plaintext copies of releases before sealing
_PSEUDONYM = re.compile(r"p1_[0-9a-f]{64}")


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEvent:
    """One audited action (FHIR AuditEvent: agent, action, recorded, outcome, entity).

    ``entities`` are ``(kind, id)`` pairs such as ``("encounter", "E1")``, ``("patient",
    "p1_...")``, ``("object", key)``, ``("case", ref)``; a patient must be a pseudonym.
    ``detail`` holds counts and codes, never names or diagnoses.
    """

    actor: str
    role: str
    action: str  # dotted: archive.run, verify.run, hold.add, retention.extend, disposition.destroy
    recorded: datetime
    outcome: str = "success"  # success | failure
    entities: tuple[tuple[str, str], ...] = ()
    reason: str | None = None
    detail: Mapping[str, str | int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.recorded.tzinfo is None:
            raise ValueError("AuditEvent.recorded must be timezone-aware")
        if self.outcome not in ("success", "failure"):
            raise ValueError("AuditEvent.outcome is 'success' or 'failure'")
        for kind, value in self.entities:
            if kind == "patient" and not _PSEUDONYM.fullmatch(value):
                raise ValueError("a patient entity must be a pseudonym (p1_...), never an id")

    def to_json(self) -> dict[str, Any]:
        return {
            "actor": self.actor,
            "role": self.role,
            "action": self.action,
            "recorded": self.recorded.astimezone(UTC).isoformat(),
            "outcome": self.outcome,
            "entities": [list(e) for e in self.entities],
            "reason": self.reason,
            "detail": dict(self.detail),
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> AuditEvent:
        return cls(
            actor=value["actor"],
            role=value["role"],
            action=value["action"],
            recorded=datetime.fromisoformat(value["recorded"]),
            outcome=value["outcome"],
            entities=tuple((k, v) for k, v in value["entities"]),
            reason=value["reason"],
            detail=value["detail"],
        )


class AuditLog:
    """Append, flush, verify and filter the audit log. Build with :meth:`open` or
    :meth:`for_settings`; events are buffered until :meth:`flush` writes one segment."""

    def __init__(self, chain: SegmentChain) -> None:
        self._chain, self._pending = chain, list[AuditEvent]()

    @classmethod
    def open(
        cls, directory: Path, store: ObjectStore, *, key: bytes, retain_years: int = 100
    ) -> AuditLog:
        """A log whose segments go to ``store`` as they are (pass a SealedStore for a bucket),
        its HEAD sealed with ``key``, the keyring's chain key."""
        chain = SegmentChain(
            directory, store, prefix=AUDIT_PREFIX, key=key, retain_years=retain_years
        )
        return cls(chain)

    @classmethod
    def for_settings(cls, settings: Settings, store: ObjectStore) -> AuditLog:
        """The configured log; segments are sealed under the configured keyring in the bucket."""
        sealed = SealedStore.for_settings(settings, store)
        key, years = configured_chain_key(settings), _retain_years(settings)
        return cls.open(audit_dir(settings), sealed, key=key, retain_years=years)

    def append(self, event: AuditEvent) -> None:
        self._pending.append(event)

    def flush(self, *, now: datetime | None = None) -> int:
        """Write the buffered events as one locked segment; returns how many were written."""
        events, self._pending = self._pending, []
        payloads = [e.to_json() for e in events]
        return len(self._chain.append(payloads, now=now or datetime.now(UTC)))

    def verify_chain(self, *, against_bucket: bool = True) -> ChainReport:
        return self._chain.verify(against_bucket=against_bucket)

    def show(
        self, *, actor: str | None = None, action: str | None = None, since: datetime | None = None
    ) -> list[AuditEvent]:
        """Events matching every given filter; ``action`` also matches a dotted prefix."""
        events = [AuditEvent.from_json(r) for r in self._chain.records()]
        return [
            e
            for e in events
            if (actor is None or e.actor == actor)
            and (action is None or e.action == action or e.action.startswith(action + "."))
            and (since is None or e.recorded >= since)
        ]


def audit_dir(settings: Settings) -> Path:
    """Beside the catalog: both are local caches of bucket-locked, hash-chained records."""
    return settings.audit_dir


def _retain_years(settings: Settings) -> int:
    return settings.catalog.manifest_retain_years

"""Refused authentications counted per source and window, written as one audit event each.

Every refusal used to be its own audit event, flushed at once: one sealed segment locked for a
century per wrong password or forged cookie, so anyone who could reach the portal could grow the
archive's log at will. A long-running process (the portal) counts them here instead and writes,
at the end of each window, one event per (action, source address, account pseudonym, reason)
with its count; at shutdown it writes what the open window holds. Beyond ``max_keys`` distinct
sources in a window the rest are counted under ``(other sources)``: the counts still add up.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta
from typing import Final

from archive.audit import AuditEvent

OTHER_SOURCES: Final = "(other sources)"
Key = tuple[str, str, str, str]  # action, source, actor, reason


class RefusalTally:
    """Thread-safe counts of the current window; :meth:`closed` hands over finished windows."""

    def __init__(self, *, window: timedelta = timedelta(minutes=1), max_keys: int = 2000) -> None:
        self.window, self.max_keys = window, max_keys
        self._counts: Counter[Key] = Counter()
        self._opened: datetime | None = None
        self._lock = threading.Lock()

    def add(self, action: str, *, source: str, actor: str, reason: str, now: datetime) -> None:
        with self._lock:
            if self._opened is None:
                self._opened = now
            key = (action, source, actor, reason)
            if key not in self._counts and len(self._counts) >= self.max_keys:
                key = (action, OTHER_SOURCES, "(other)", reason)
            self._counts[key] += 1

    def closed(self, now: datetime, *, everything: bool = False) -> list[AuditEvent]:
        """The events of the window if it has ended by ``now`` (or ``everything``: at shutdown),
        emptied from the tally; the caller writes them (and puts them back if it cannot)."""
        with self._lock:
            opened = self._opened
            if opened is None or (not everything and now < opened + self.window):
                return []
            counts, self._counts, self._opened = self._counts, Counter(), None
        until = max(now, opened)
        return [_event(key, n, opened, until) for key, n in sorted(counts.items())]

    def restore(self, events: list[AuditEvent]) -> None:
        """Events a write failed to keep: counted again, to go out with the next window."""
        with self._lock:
            for e in events:
                key = (e.action, str(e.detail["source"]), e.actor, e.reason or "")
                self._counts[key] += int(e.detail["count"])
                opened = datetime.fromisoformat(str(e.detail["from"]))
                self._opened = min(self._opened or opened, opened)


def _event(key: Key, count: int, opened: datetime, until: datetime) -> AuditEvent:
    action, source, actor, reason = key
    return AuditEvent(
        actor=actor,
        role="unknown",
        action=action,
        recorded=until,
        outcome="failure",
        reason=reason,
        detail={
            "source": source,
            "count": count,
            "from": opened.isoformat(),
            "until": until.isoformat(),
        },
    )

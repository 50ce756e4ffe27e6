"""The audit log, as auditors and admins read it: newest first, a page at a time.

Reading the log is itself an audit event; anyone else gets 403 from :mod:`retrieval.access`,
audited. A patient pseudonym in an event is cut short on the page: enough to match two events,
not to carry the pseudonym elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC

from fastapi import APIRouter, Request
from fastapi.responses import Response

from archive.audit import AuditEvent
from portal.deps import CurrentUser, PortalDep
from portal.web import optional

router = APIRouter()
AUDIT_PAGE = 500


@dataclass(frozen=True, slots=True)
class EventRow:
    recorded: str
    actor: str
    role: str
    action: str
    outcome: str
    entities: str
    detail: str
    reason: str


def event_row(e: AuditEvent) -> EventRow:
    entities = ", ".join(f"{k} {v[:15] + '…' if k == 'patient' else v}" for k, v in e.entities)
    detail = ", ".join(f"{k}={v}" for k, v in sorted(e.detail.items()))
    return EventRow(
        f"{e.recorded.astimezone(UTC):%Y-%m-%d %H:%M:%S}",
        e.actor,
        e.role,
        e.action,
        e.outcome,
        entities,
        detail,
        e.reason or "",
    )


@router.get("/audit")
def audit_page(
    request: Request,
    portal: PortalDep,
    caller: CurrentUser,
    actor: str | None = None,
    action: str | None = None,
) -> Response:
    events = portal.call(
        portal.retrieval.audit_events,
        caller.principal,
        now=portal.clock(),
        actor=optional(actor),
        action=optional(action),
    )
    newest = sorted(events, key=lambda e: e.recorded, reverse=True)[:AUDIT_PAGE]
    rows = [event_row(e) for e in newest]
    return portal.render(
        request,
        "audit.html",
        caller=caller,
        events=rows,
        total=len(events),
        actor=actor or "",
        action=action or "",
    )

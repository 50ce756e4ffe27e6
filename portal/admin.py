"""Grants (records officers issue and revoke them) and the audit log (auditors read it).

The service decides who may: a records officer manages grants, an inspector sees their own, an
auditor or admin reads the audit log; anyone else gets 403 from :mod:`retrieval.access`, audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from archive.audit import AuditEvent
from archive.core.errors import ArchiveError
from portal.web import optional, portal_of
from retrieval.access import Grant, Role

router = APIRouter()
AUDIT_PAGE = 500


@dataclass(frozen=True, slots=True)
class GrantRow:
    grant_id: str
    inspector: str
    scope: tuple[tuple[str, str], ...]  # (label key, value)
    valid_from: str
    valid_until: str
    state: str  # active | expired | pending
    issued_by: str
    case_ref: str


def grant_row(g: Grant, now: datetime, tz: ZoneInfo) -> GrantRow:
    scope = []
    if g.facility:
        scope.append(("scope.facility", g.facility))
    if g.encounter_ids:
        scope.append(("scope.encounters", ", ".join(sorted(g.encounter_ids))))
    if g.patient_pseudonym:
        scope.append(("scope.patient", ""))
    state = "active" if g.active(now) else ("pending" if now < g.valid_from else "expired")
    return GrantRow(
        g.grant_id,
        g.inspector,
        tuple(scope),
        f"{g.valid_from.astimezone(tz):%Y-%m-%d %H:%M}",
        f"{g.valid_until.astimezone(tz):%Y-%m-%d %H:%M}",
        state,
        g.issued_by,
        g.case_ref,
    )


@router.get("/grants")
def grants_page(
    request: Request,
    issued: str | None = None,
    revoked: str | None = None,
) -> Response:
    portal = portal_of(request)
    caller = portal.caller(request)
    now = portal.clock()
    grants = portal.call(portal.retrieval.grants, caller.principal, now=now)
    tz = ZoneInfo(portal.settings.archive.timezone)
    rows = sorted(
        (grant_row(g, now, tz) for g in grants),
        key=lambda r: (r.state != "active", r.valid_until),
        reverse=False,
    )
    inspectors = []
    if caller.principal.role is Role.RECORDS_OFFICER:
        inspectors = portal.call(portal.retrieval.inspectors, caller.principal)
    return portal.render(
        request,
        "grants.html",
        caller=caller,
        grants=rows,
        inspectors=inspectors,
        issued=issued,
        revoked=revoked,
        manage=caller.principal.role is Role.RECORDS_OFFICER,
    )


@router.post("/grants")
def issue_grant(
    request: Request,
    csrf: Annotated[str, Form()],
    inspector: Annotated[str, Form()],
    case_ref: Annotated[str, Form()],
    days: Annotated[int, Form()] = 14,
    facility: Annotated[str, Form()] = "",
    encounters: Annotated[str, Form()] = "",
    patient: Annotated[str, Form()] = "",
) -> Response:
    portal = portal_of(request)
    caller = portal.caller(request)
    caller.check_csrf(csrf)
    if not 1 <= days <= 366:
        raise ArchiveError("a grant lasts 1 to 366 days")
    now = portal.clock()
    pseudonym = portal.retrieval.pseudonym(patient.strip()) if patient.strip() else None
    ids = [e.strip() for e in encounters.replace(";", ",").split(",") if e.strip()]
    grant = portal.call(
        portal.retrieval.issue_grant,
        caller.principal,
        now=now,
        inspector=inspector.strip(),
        case_ref=case_ref.strip(),
        valid_from=now,
        valid_until=now + timedelta(days=days),
        facility=optional(facility),
        encounter_ids=ids,
        patient_pseudonym=pseudonym,
    )
    return RedirectResponse(f"/grants?issued={grant.grant_id}", status_code=303)


@router.post("/grants/{grant_id}/revoke")
def revoke_grant(
    request: Request,
    grant_id: str,
    csrf: Annotated[str, Form()],
    reason: Annotated[str, Form()],
) -> Response:
    portal = portal_of(request)
    caller = portal.caller(request)
    caller.check_csrf(csrf)
    if not reason.strip():
        raise ArchiveError("say why the grant is revoked")
    portal.call(
        portal.retrieval.revoke_grant,
        caller.principal,
        grant_id,
        reason=reason.strip(),
        now=portal.clock(),
    )
    return RedirectResponse(f"/grants?revoked={grant_id}", status_code=303)


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
    actor: str | None = None,
    action: str | None = None,
) -> Response:
    portal = portal_of(request)
    caller = portal.caller(request)
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

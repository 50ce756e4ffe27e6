"""Grants: records officers issue and revoke them, an inspector sees their own.

The service decides who may: a records officer manages grants, an inspector sees their own
active ones; anyone else gets 403 from :mod:`retrieval.access`, audited. A grant is never edited:
it is issued for 1 to 366 days and revoked with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from archive.core.errors import ArchiveError
from portal.deps import CurrentUser, PortalDep
from portal.web import optional
from retrieval import Grant, Role

router = APIRouter()


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
    portal: PortalDep,
    caller: CurrentUser,
    issued: str | None = None,
    revoked: str | None = None,
) -> Response:
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
    portal: PortalDep,
    caller: CurrentUser,
    csrf: Annotated[str, Form()],
    inspector: Annotated[str, Form()],
    case_ref: Annotated[str, Form()],
    days: Annotated[int, Form()] = 14,
    facility: Annotated[str, Form()] = "",
    encounters: Annotated[str, Form()] = "",
    patient: Annotated[str, Form()] = "",
) -> Response:
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
    portal: PortalDep,
    caller: CurrentUser,
    grant_id: str,
    csrf: Annotated[str, Form()],
    reason: Annotated[str, Form()],
) -> Response:
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

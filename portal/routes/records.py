"""Search, the dossier page and the export: the pages inspectors and records officers use.

A patient id typed into the search form is pseudonymised at once and goes no further: it is
posted (never in a URL, so never in a proxy's log or the browser history) and the results page
carries only a session-bound, signed copy of the pseudonym for the "export every record of this
patient" button.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask

from archive.core.errors import ArchiveError, StoreUnavailableError
from portal import exports
from portal.deps import CurrentUser, PortalDep
from portal.web import Caller, Portal, optional
from retrieval import ExportResult, Hit, Query, Role, SearchResult

router = APIRouter()


@dataclass(frozen=True, slots=True)
class HitRow:
    """A search hit as the page shows it: local dates, translated states."""

    encounter_id: str
    facility: str
    admitted: str
    discharged: str
    retention_class: str
    retain_until: str
    on_hold: bool
    versions: int
    verification: str  # a status key: passed | failed | indeterminate | never
    verified_at: str
    patient_pseudonym: str | None


def hit_row(hit: Hit, tz: ZoneInfo) -> HitRow:
    v = hit.verification
    return HitRow(
        encounter_id=hit.encounter_id,
        facility=hit.facility,
        admitted=f"{hit.admitted_at.astimezone(tz):%Y-%m-%d}",
        discharged=f"{hit.discharged_at.astimezone(tz):%Y-%m-%d}",
        retention_class=hit.retention_class,
        retain_until=f"{hit.retain_until.astimezone(tz):%Y-%m-%d}",
        on_hold=hit.on_hold,
        versions=hit.versions,
        verification=v.status if v else "never",
        verified_at=f"{v.verified_at.astimezone(tz):%Y-%m-%d %H:%M}" if v else "",
        patient_pseudonym=hit.patient_pseudonym,
    )


@router.get("/search")
def search_page(request: Request, portal: PortalDep, caller: CurrentUser) -> Response:
    return portal.render(
        request, "search.html", caller=caller, form={}, **_search_context(portal, caller)
    )


@router.post("/search")
def search(
    request: Request,
    portal: PortalDep,
    caller: CurrentUser,
    csrf: Annotated[str, Form()],
    encounter: Annotated[str, Form()] = "",
    patient: Annotated[str, Form()] = "",
    facility: Annotated[str, Form()] = "",
    retention_class: Annotated[str, Form()] = "",
    date_from: Annotated[str, Form()] = "",
    date_to: Annotated[str, Form()] = "",
) -> Response:
    caller.check_csrf(csrf)
    pseudonym = portal.retrieval.pseudonym(patient.strip()) if patient.strip() else None
    query = Query(
        encounter_id=optional(encounter),
        patient_pseudonym=pseudonym,
        facility=optional(facility),
        retention_class=optional(retention_class),
        discharged_from=_day(date_from),
        discharged_to=_day(date_to),
    )
    result: SearchResult = portal.call(
        portal.retrieval.search, caller.principal, query, now=portal.clock()
    )
    tz = ZoneInfo(portal.settings.archive.timezone)
    # The patient id is not echoed back into the page.
    form = {
        "encounter": encounter,
        "facility": facility,
        "retention_class": retention_class,
        "date_from": date_from,
        "date_to": date_to,
    }
    return portal.render(
        request,
        "search.html",
        caller=caller,
        form=form,
        hits=[hit_row(h, tz) for h in result.hits],
        searched=True,
        truncated=result.truncated,
        patient_export=caller.seal(pseudonym) if pseudonym and result.hits else None,
        **_search_context(portal, caller),
    )


def _search_context(portal: Portal, caller: Caller) -> dict[str, Any]:
    grants = []
    if caller.principal.role is Role.INSPECTOR:
        now = portal.clock()
        grants = portal.call(portal.retrieval.grants, caller.principal, now=now)
    return {"grants": grants, "classes": portal.retention_classes}


def _day(value: str) -> date | None:
    value = value.strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as e:
        raise ArchiveError("a date is written YYYY-MM-DD") from e


@router.get("/dossier/{encounter_id}")
def dossier(
    request: Request, portal: PortalDep, caller: CurrentUser, encounter_id: str
) -> Response:
    hits = portal.call(portal.retrieval.view, caller.principal, encounter_id, now=portal.clock())
    if not hits:
        raise ArchiveError("no archived record of this encounter")
    tz = ZoneInfo(portal.settings.archive.timezone)
    return portal.render(
        request, "dossier.html", caller=caller, hit=hit_row(hits[0], tz), versions=hits[0].versions
    )


@router.post("/export")
async def export(
    portal: PortalDep,
    caller: CurrentUser,
    csrf: Annotated[str, Form()],
    encounter: Annotated[str, Form()] = "",
    patient: Annotated[str, Form()] = "",
) -> Response:
    """Build the dossier in a worker process, stream the zip, delete it once sent.

    Async so a waiting export holds no request thread; at most two per worker wait or run, the
    next one is told to come back (503) rather than queue without bound. The caller is
    authenticated in a worker thread (a sync dependency): it waits on the retrieval lock."""
    caller.check_csrf(csrf)
    pseudonym = caller.unseal(patient) if patient else None
    if bool(optional(encounter)) == bool(pseudonym):
        raise ArchiveError("export one encounter or one patient")
    if not portal.export_slots.acquire(blocking=False):
        raise StoreUnavailableError("every export worker is busy: try again in a minute")
    try:
        result = await _exported(portal, caller, optional(encounter), pseudonym)
    finally:
        portal.export_slots.release()
    return FileResponse(
        result.path,
        media_type="application/zip",
        filename=result.path.name,
        headers={
            "X-Dossier-SHA256": result.sha256,
            "X-Dossier-Documents": str(len(result.documents)),
        },
        background=BackgroundTask(exports.discard, result.path),
    )


async def _exported(
    portal: Portal, caller: Caller, encounter_id: str | None, pseudonym: str | None
) -> ExportResult:
    if portal.pool is None:
        raise StoreUnavailableError("the portal is starting: try again in a moment")
    future = portal.pool.submit(
        exports.run_export,
        caller.token,
        root=exports.export_dir(portal.settings),
        now=portal.clock(),
        encounter_id=encounter_id,
        patient_pseudonym=pseudonym,
    )
    try:
        return await asyncio.wrap_future(future)
    except asyncio.CancelledError:  # the browser went away: the zip nobody fetches is removed
        future.add_done_callback(_discard_when_done)
        raise
    except BrokenProcessPool as e:  # a worker died (out of memory on a huge dossier, killed)
        broken, portal.pool = portal.pool, exports.open_pool(portal.settings)
        broken.shutdown(wait=False, cancel_futures=True)
        raise StoreUnavailableError("the export worker stopped: try again") from e


def _discard_when_done(future: Future[ExportResult]) -> None:
    if not future.cancelled() and future.exception() is None:
        exports.discard(future.result().path)

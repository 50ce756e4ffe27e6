"""Every refusal as a page: the one mapping from an archive error to a status and what to do.

The status is the error's own (:func:`portal.errors.status_of`); the page says what happened
and, for a refusal the archive recorded, that it was recorded. Two cases take another turn: a
browser without a session is sent to the sign-in page and brought back after it; a dead session
(expired, logged out, account changed) answers the sign-in page with "sign in again" and drops
the cookie. FastAPI's own refusals (an unknown page, a form missing a field) get pages too.

A page for someone not signed in never carries an error's own message: a store's says which
endpoint, bucket and key it failed on, others name paths on the server. It gets one sentence per
status (:data:`ANONYMOUS`), and the log gets the error's type.
"""

from __future__ import annotations

import logging
from typing import Final
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from archive.core.errors import ArchiveError
from portal.deps import get_portal
from portal.errors import (
    FormRefusedError,
    NotSignedInError,
    TooManyAttemptsError,
    audited,
    status_of,
)
from portal.guard import route
from portal.web import Caller
from retrieval import AuthenticationError

log = logging.getLogger("emr_archive.portal")

ANONYMOUS: Final = {
    400: "the archive cannot answer this request",
    403: "refused",
    404: "no such page",
    503: "the archive is unavailable for a moment: try again later",
}


def install(app: FastAPI) -> None:
    app.exception_handler(ArchiveError)(archive_error)
    app.exception_handler(StarletteHTTPException)(http_error)
    app.exception_handler(RequestValidationError)(bad_form)


async def archive_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ArchiveError)
    portal = get_portal(request)
    if isinstance(error, NotSignedInError) and request.method == "GET" and _wants_html(request):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)
    status = status_of(error)
    if isinstance(error, AuthenticationError):
        # Back to the page after signing in again, if it was a page (not a form's POST target).
        again = request.url.path if request.method == "GET" else ""
        response = portal.render(
            request, "login.html", status=status, message="login.expired", next=again
        )
        response.delete_cookie(portal.cookie, path="/")
        return response
    if isinstance(error, FormRefusedError):
        log.warning("%s %s refused: %s", request.method, route(request), type(error).__name__)
    caller = await _header_caller(request) if status not in (401, 429) else None
    detail = str(error)
    if caller is None and not isinstance(error, TooManyAttemptsError | FormRefusedError):
        log.warning(
            "%s %s answered %d: %s", request.method, route(request), status, type(error).__name__
        )
        detail = ANONYMOUS.get(status, ANONYMOUS[400])
    return portal.render(
        request,
        "error.html",
        caller=caller,
        status=status,
        title=f"error.{status}",
        detail=detail,
        audited=audited(error),
    )


async def http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 405:
        return PlainTextResponse("method not allowed", status_code=405)
    code = error.status_code if error.status_code in (400, 401, 403, 404) else 400
    return get_portal(request).render(
        request,
        "error.html",
        status=code,
        title=f"error.{code}",
        detail=ANONYMOUS.get(code, ANONYMOUS[400]),  # Starlette's own words, not the path
        audited=False,
    )


async def bad_form(request: Request, error: Exception) -> Response:
    """A form without its fields: 400 with a page, not FastAPI's JSON 422."""
    return get_portal(request).render(
        request,
        "error.html",
        status=400,
        title="error.400",
        detail="the form is incomplete: reload the page",
        audited=False,
    )


async def _header_caller(request: Request) -> Caller | None:
    """Who is signed in, for the error page's header; authenticating blocks on the retrieval
    lock, so not on the event loop."""
    try:
        return await run_in_threadpool(get_portal(request).caller, request)
    except ArchiveError:
        return None


def _wants_html(request: Request) -> bool:
    """A browser (sent to the sign-in page), not a script with a bearer token (told 401)."""
    return "authorization" not in request.headers

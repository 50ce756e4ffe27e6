"""The inspectors' web portal: a small FastAPI application with server-rendered pages.

``create_app(settings)`` wires it; ``emr-archive portal`` serves it on loopback (TLS is the
proxy's job in production: README, "The portal in production"). Pages: sign in, search, a
dossier page with its export button, grants for records officers, the audit log for auditors.
Every records-facing request goes through :class:`retrieval.service.Retrieval`, which decides
and audits; the portal adds sessions, CSRF protection, security headers and two languages.

Errors answer with the right status and a page saying what to do: 401 (not signed in, or the
session is no longer valid: audited by ``authenticate``), 403 (role or grant does not allow it:
audited), 400 (a request the archive cannot answer), 503 (the store is unreachable). Nothing a
page or the access log shows carries a patient's name or id: the log names routes, not paths.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from archive.core.errors import ArchiveError
from portal import admin, exports, i18n, pages
from portal.settings import PortalAppSettings as Settings
from portal.web import (
    HOME,
    LANG_COOKIE,
    FormRefusedError,
    NotSignedInError,
    Portal,
    audited,
    client_address,
    local_path,
    portal_of,
    status_of,
)
from retrieval.access import AuthenticationError
from retrieval.service import Retrieval

log = logging.getLogger("emr_archive.portal")

_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def create_app(
    settings: Settings,
    *,
    retrieval: Retrieval | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> FastAPI:
    """The portal application. ``retrieval`` and ``clock`` are for tests (a pinned clock)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        portal = Portal(settings, retrieval or Retrieval.open(settings), clock)
        swept = exports.sweep(exports.export_dir(settings))
        if swept:
            log.warning("removed %d export(s) left by an earlier portal process", swept)
        portal.pool = exports.open_pool(settings)
        app.state.portal = portal
        try:
            yield
        finally:
            portal.pool.shutdown(wait=True, cancel_futures=True)
            portal.retrieval.index.close()

    app = FastAPI(
        title="emr-archive portal",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    static = Path(str(resources.files("portal").joinpath("static")))
    app.mount("/static", StaticFiles(directory=static), name="static")
    app.middleware("http")(_guard(settings))
    app.exception_handler(ArchiveError)(_archive_error)
    app.exception_handler(StarletteHTTPException)(_http_error)
    app.exception_handler(RequestValidationError)(_bad_form)
    _session_routes(app, settings)
    app.include_router(pages.router)
    app.include_router(admin.router)
    return app


def _guard(
    settings: Settings,
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    """Refuse cross-origin POSTs, add security headers, log route + status (never the path).

    Referrer-Policy is ``same-origin``, not ``no-referrer``: with the latter Chromium sends
    ``Origin: null`` on our own forms, and the origin check would refuse every one of them."""

    async def guard(
        request: Request,
        call_next: Callable[[Request], Awaitable[Response]],
    ) -> Response:
        started = time.perf_counter()
        if request.method == "POST" and _foreign(request):
            response: Response = PlainTextResponse("cross-origin form refused", status_code=403)
        else:
            try:
                response = await call_next(request)
            except Exception as e:  # noqa: BLE001 - its message may hold anything: log the type
                log.error("%s %s failed: %s", request.method, _route(request), type(e).__name__)
                response = portal_of(request).render(
                    request,
                    "error.html",
                    status=500,
                    title="error.500",
                    detail="internal error: logged without details",
                    audited=False,
                )
        response.headers.update(
            {
                "Content-Security-Policy": _CSP,
                "X-Content-Type-Options": "nosniff",
                "X-Frame-Options": "DENY",
                "Referrer-Policy": "same-origin",
                "Cache-Control": "no-store",
            }
        )
        if settings.portal.secure_cookies:
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
        log.info(
            "%s %s %d %.0f ms",
            request.method,
            _route(request),
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response

    return guard


def _foreign(request: Request) -> bool:
    """A POST another site's page made (CSRF, login CSRF). Browsers send Origin on every POST
    and Sec-Fetch-Site where they can; a script without either is not a browser being abused."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        return True
    return request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none")


def _route(request: Request) -> str:
    """The route's template (``/dossier/{encounter_id}``), never the path with its ids."""
    route = getattr(request.scope.get("route"), "path", None)
    if route is None:
        return "/static/*" if request.url.path.startswith("/static/") else "(unrouted)"
    return str(route)


async def _archive_error(request: Request, error: Exception) -> Response:
    portal = portal_of(request)
    if isinstance(error, NotSignedInError) and request.method == "GET" and _wants_html(request):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={_quote(target)}", status_code=303)
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
        log.warning("%s %s refused: %s", request.method, _route(request), type(error).__name__)
    caller = None
    if status not in (401, 429):
        try:  # for the page's header; authenticate blocks on the lock: not on the event loop
            caller = await run_in_threadpool(portal.caller, request)
        except ArchiveError:
            caller = None
    return portal.render(
        request,
        "error.html",
        caller=caller,
        status=status,
        title=f"error.{status}",
        detail=str(error),
        audited=audited(error),
    )


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 405:
        return PlainTextResponse("method not allowed", status_code=405)
    code = error.status_code if error.status_code in (400, 401, 403, 404) else 400
    return portal_of(request).render(
        request,
        "error.html",
        status=code,
        title=f"error.{code}",
        detail=str(error.detail),
        audited=False,
    )


async def _bad_form(request: Request, error: Exception) -> Response:
    """A form without its fields: 400 with a page, not FastAPI's JSON 422."""
    return portal_of(request).render(
        request,
        "error.html",
        status=400,
        title="error.400",
        detail="the form is incomplete: reload the page",
        audited=False,
    )


def _wants_html(request: Request) -> bool:
    """A browser (sent to the sign-in page), not a script with a bearer token (told 401)."""
    return "authorization" not in request.headers


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")


def _session_routes(app: FastAPI, settings: Settings) -> None:
    @app.get("/healthz", include_in_schema=False)
    def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/")
    def home(request: Request) -> Response:
        portal = portal_of(request)
        try:
            caller = portal.caller(request)
        except ArchiveError:
            response = RedirectResponse("/login", status_code=303)
            response.delete_cookie(portal.cookie, path="/")  # a dead cookie is not sent again
            return response
        return RedirectResponse(HOME[caller.principal.role], status_code=303)

    @app.get("/login")
    def login_page(request: Request, next: str | None = None, bye: int = 0) -> Response:
        return portal_of(request).render(
            request,
            "login.html",
            next=local_path(next, ""),
            message="login.signed_out" if bye else None,
        )

    @app.post("/login")
    def login(
        request: Request,
        username: Annotated[str, Form()],
        password: Annotated[str, Form()],
        next: Annotated[str, Form()] = "",
    ) -> Response:
        portal = portal_of(request)
        address = client_address(request)
        portal.throttle.check(address)
        try:
            session = portal.call(
                portal.retrieval.login, username.strip(), password, now=portal.clock()
            )
        except AuthenticationError:
            portal.throttle.failed(address)
            return portal.render(
                request,
                "login.html",
                status=401,
                message="login.failed",
                next=local_path(next, ""),
                username=username[:64],
            )
        _end_previous_session(portal, request)
        target = local_path(next, HOME[session.principal.role])
        response = RedirectResponse(target, status_code=303)
        ttl = portal.retrieval.tokens.ttl
        response.set_cookie(
            portal.cookie,
            session.token,
            max_age=int(ttl.total_seconds()),
            path="/",
            httponly=True,
            samesite="strict",
            secure=settings.portal.secure_cookies,
        )
        return response

    @app.post("/logout")
    def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
        portal = portal_of(request)
        caller = portal.caller(request)
        caller.check_csrf(csrf)
        portal.call(portal.retrieval.logout, caller.principal, now=portal.clock())
        response = RedirectResponse("/login?bye=1", status_code=303)
        response.delete_cookie(portal.cookie, path="/")
        return response

    @app.get("/lang/{code}")
    def choose_language(request: Request, code: str, next: str | None = None) -> Response:
        response = RedirectResponse(local_path(next, "/"), status_code=303)
        if code in i18n.LANGUAGES:
            response.set_cookie(
                LANG_COOKIE,
                code,
                max_age=365 * 86400,
                path="/",
                samesite="lax",
                secure=settings.portal.secure_cookies,
            )
        return response


def _end_previous_session(portal: Portal, request: Request) -> None:
    """Signing in again revokes the session the browser still held (no orphaned live tokens)."""
    if not request.cookies.get(portal.cookie):
        return
    try:
        previous = portal.caller(request)
    except ArchiveError:
        return  # already dead (and that was audited)
    portal.call(portal.retrieval.logout, previous.principal, now=portal.clock())

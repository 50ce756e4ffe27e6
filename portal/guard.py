"""The middleware around every request: cross-origin POSTs refused, security headers added, a
crash answered with a page that says nothing of its cause, and an access log without ids.

Referrer-Policy is ``same-origin``, not ``no-referrer``: with the latter Chromium sends
``Origin: null`` on our own forms, and the origin check would refuse every one of them. The log
names the route's template (``/dossier/{encounter_id}``), never the path with its ids.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.responses import PlainTextResponse, Response

from portal.deps import get_portal
from portal.settings import PortalAppSettings as Settings

log = logging.getLogger("emr_archive.portal")

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
Guard = Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]


def guard(settings: Settings) -> Guard:
    """The ``http`` middleware for an app with these settings (HSTS only behind HTTPS)."""

    async def guarded(
        request: Request,
        call_next: Callable[[Request], Awaitable[Response]],
    ) -> Response:
        started = time.perf_counter()
        if request.method == "POST" and cross_origin(request):
            response: Response = PlainTextResponse("cross-origin form refused", status_code=403)
        else:
            try:
                response = await call_next(request)
            except Exception as e:  # noqa: BLE001 - its message may hold anything: log the type
                log.error("%s %s failed: %s", request.method, route(request), type(e).__name__)
                response = _internal_error(request)
        response.headers.update(
            {
                "Content-Security-Policy": CSP,
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
            route(request),
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response

    return guarded


def cross_origin(request: Request) -> bool:
    """A POST another site's page made (CSRF, login CSRF). Browsers send Origin on every POST
    and Sec-Fetch-Site where they can; a script without either is not a browser being abused."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        return True
    return request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none")


def route(request: Request) -> str:
    """The route's template (``/dossier/{encounter_id}``), never the path with its ids."""
    template = getattr(request.scope.get("route"), "path", None)
    if template is None:
        return "/static/*" if request.url.path.startswith("/static/") else "(unrouted)"
    return str(template)


def _internal_error(request: Request) -> Response:
    """Not an ArchiveError: a bug or a foreign failure. 500, and the page says nothing of it."""
    return get_portal(request).render(
        request,
        "error.html",
        status=500,
        title="error.500",
        detail="internal error: logged without details",
        audited=False,
    )

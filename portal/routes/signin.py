"""Signing in and out, the home page's redirect, the language switch and the health check.

A session is a retrieval token in an HttpOnly, SameSite=Strict cookie. Failed sign-ins count
against the account, the address and the portal as a whole (:mod:`portal.throttle`) before the
archive is asked, and signing in again revokes the session the browser still held, so no live
token is left orphaned.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from archive.core.errors import ArchiveError
from portal import i18n
from portal.deps import CurrentUser, OptionalUser, PortalDep
from portal.web import HOME, LANG_COOKIE, Portal, local_path
from retrieval import AuthenticationError

router = APIRouter()


@router.get("/healthz", include_in_schema=False)
def healthz() -> PlainTextResponse:
    return PlainTextResponse("ok")


@router.get("/")
def home(portal: PortalDep, caller: OptionalUser) -> Response:
    if caller is None:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(portal.cookie, path="/")  # a dead cookie is not sent again
        return response
    return RedirectResponse(HOME[caller.principal.role], status_code=303)


@router.get("/login")
def login_page(
    request: Request, portal: PortalDep, next: str | None = None, bye: int = 0
) -> Response:
    return portal.render(
        request,
        "login.html",
        next=local_path(next, ""),
        message="login.signed_out" if bye else None,
    )


@router.post("/login")
def login(
    request: Request,
    portal: PortalDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "",
) -> Response:
    try:
        session = portal.login(request, username.strip()[:200], password)
    except AuthenticationError:
        return portal.render(
            request,
            "login.html",
            status=401,
            message="login.failed",
            next=local_path(next, ""),
            username=username[:64],
        )
    _end_previous_session(portal, request)
    response = RedirectResponse(local_path(next, HOME[session.principal.role]), status_code=303)
    response.set_cookie(
        portal.cookie,
        session.token,
        max_age=int(portal.retrieval.tokens.ttl.total_seconds()),
        path="/",
        httponly=True,
        samesite="strict",
        secure=portal.settings.portal.secure_cookies,
    )
    return response


@router.post("/logout")
def logout(portal: PortalDep, caller: CurrentUser, csrf: Annotated[str, Form()] = "") -> Response:
    caller.check_csrf(csrf)
    portal.call(portal.retrieval.logout, caller.principal, now=portal.clock())
    response = RedirectResponse("/login?bye=1", status_code=303)
    response.delete_cookie(portal.cookie, path="/")
    return response


@router.get("/lang/{code}")
def choose_language(portal: PortalDep, code: str, next: str | None = None) -> Response:
    response = RedirectResponse(local_path(next, "/"), status_code=303)
    if code in i18n.LANGUAGES:
        response.set_cookie(
            LANG_COOKIE,
            code,
            max_age=365 * 86400,
            path="/",
            samesite="lax",
            secure=portal.settings.portal.secure_cookies,
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

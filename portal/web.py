"""What every portal page shares: the caller's session, CSRF tokens, templates, the lock.

Sessions are the retrieval tokens (:class:`retrieval.access.TokenService`: signed, expiring,
revocable at logout) carried in an HttpOnly, SameSite=Strict cookie, or in an
``Authorization: Bearer`` header for scripts and a future OIDC front end. Every state-changing
form carries a CSRF token derived from the session token, and POSTs from another origin are
refused before they reach a handler.

One :class:`Retrieval` serves all request threads, behind one lock: its calls are short
(milliseconds; a login ~50 ms of scrypt) and it holds buffers that are not thread-safe. Exports,
the one long call, run in worker processes (:mod:`portal.exports`).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, Final, TypeVar

import jinja2
from fastapi import Request
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeSerializer
from starlette.responses import HTMLResponse

from archive.errors import (
    AccessDeniedError,
    ArchiveError,
    AuthenticationError,
    StoreUnavailableError,
)
from archive.settings import Settings
from portal import i18n
from retrieval.access import Action, Principal, Role
from retrieval.service import Retrieval

SESSION_COOKIE: Final = "emr_session"
LANG_COOKIE: Final = "emr_lang"
T = TypeVar("T")

HOME: Final[dict[Role, str]] = {
    Role.RECORDS_OFFICER: "/search",
    Role.INSPECTOR: "/search",
    Role.AUDITOR: "/audit",
    Role.ADMIN: "/audit",
}


class NotSignedInError(AuthenticationError):
    """No session at all (a browser is sent to the sign-in page; an API caller gets 401)."""


@dataclass(frozen=True, slots=True)
class Caller:
    principal: Principal
    token: str

    @property
    def csrf(self) -> str:
        # Bound to the session: only someone holding the HttpOnly cookie's token can make it.
        return hmac.new(self.token.encode(), b"emr-archive.portal.csrf", hashlib.sha256).hexdigest()

    def check_csrf(self, submitted: str) -> None:
        if not hmac.compare_digest(self.csrf, submitted or ""):
            raise AccessDeniedError("the form expired or came from elsewhere: reload the page")

    def seal(self, value: str) -> str:
        """A value a page hands back in a form, unforgeable and valid in this session only."""
        return str(URLSafeSerializer(self.token, salt="portal.form").dumps(value))

    def unseal(self, sealed: str) -> str:
        try:
            return str(URLSafeSerializer(self.token, salt="portal.form").loads(sealed))
        except BadSignature as e:
            raise AccessDeniedError("the form was altered or belongs to another session") from e


@dataclass
class Portal:
    """The application's state: settings, the retrieval API, the clock, the export pool."""

    settings: Settings
    retrieval: Retrieval
    clock: Callable[[], datetime]
    templates: Jinja2Templates = field(init=False)
    pool: Executor | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        directory = Path(str(resources.files("portal").joinpath("templates")))
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(directory), autoescape=True,
                                 undefined=jinja2.StrictUndefined)  # fmt: skip
        self.templates = Jinja2Templates(env=env)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self.lock:
            return fn(*args, **kwargs)

    def caller(self, request: Request) -> Caller:
        """The authenticated caller, or NotSignedIn / AuthenticationError (audited)."""
        token = request.cookies.get(SESSION_COOKIE)
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        if not token:
            raise NotSignedInError("sign in first")
        principal = self.call(self.retrieval.authenticate, token, now=self.clock())
        return Caller(principal, token)

    def render(self, request: Request, template: str, *, caller: Caller | None = None,
               status: int = 200, **context: Any) -> HTMLResponse:  # fmt: skip
        lang = i18n.language(request.cookies.get(LANG_COOKIE),
                             request.headers.get("accept-language"))  # fmt: skip
        page = {"request": request, "t": i18n.translator(lang), "lang": lang, "caller": caller,
                "nav": _nav(caller), "path": request.url.path, **context}  # fmt: skip
        return self.templates.TemplateResponse(request, template, page, status_code=status)


def portal_of(request: Request) -> Portal:
    portal: Portal = request.app.state.portal
    return portal


def _nav(caller: Caller | None) -> list[tuple[str, str]]:
    """Only the pages the role may use (the handlers still check: this is convenience)."""
    if caller is None:
        return []
    from retrieval.access import PERMISSIONS

    allowed = PERMISSIONS[caller.principal.role]
    links = []
    if Action.SEARCH in allowed:
        links.append(("/search", "nav.search"))
    if Action.GRANT_MANAGE in allowed or caller.principal.role is Role.INSPECTOR:
        links.append(("/grants", "nav.grants"))
    if Action.AUDIT_READ in allowed:
        links.append(("/audit", "nav.audit"))
    return links


def local_path(candidate: str | None, default: str) -> str:
    """An after-sign-in target on this site only (no open redirect)."""
    if candidate and candidate.startswith("/") and not candidate.startswith(("//", "/\\")):
        return candidate
    return default


def optional(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def status_of(error: Exception) -> int:
    if isinstance(error, AuthenticationError):
        return 401
    if isinstance(error, AccessDeniedError):
        return 403
    if isinstance(error, StoreUnavailableError):
        return 503
    if isinstance(error, ArchiveError):
        return 400
    return 500

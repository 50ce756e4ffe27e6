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

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, Final, TypeVar

import jinja2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse

from portal import i18n
from portal.errors import FormRefusedError, NotSignedInError, TooManyAttemptsError
from portal.settings import PortalAppSettings as Settings
from retention import load_policy
from retrieval import PERMISSIONS, Action, AuthenticationError, Principal, Retrieval, Role

SESSION_COOKIE: Final = "emr_session"
# Behind HTTPS the cookie takes the __Host- prefix: the browser then only accepts it Secure,
# from this host, for path / (no subdomain can plant or overwrite it).
SECURE_SESSION_COOKIE: Final = "__Host-emr_session"
LANG_COOKIE: Final = "emr_lang"
T = TypeVar("T")

HOME: Final[dict[Role, str]] = {
    Role.RECORDS_OFFICER: "/search",
    Role.INSPECTOR: "/search",
    Role.AUDITOR: "/audit",
    Role.ADMIN: "/audit",
    Role.FACILITY_HEAD: "/audit",
    Role.HEAD_DELEGATE: "/audit",
}


class FailureThrottle:
    """Failed sign-ins and refused tokens per client address in a sliding window.

    Every failure is an audit event, and every audit event a locked, undeletable object: without
    a limit, anyone who can reach the portal could write to the archive's log at will. Past the
    limit an address is answered 429 without touching the log until the window moves on."""

    def __init__(self, *, limit: int = 20, window_s: float = 60.0) -> None:
        self.limit, self.window_s = limit, window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, address: str) -> None:
        with self._lock:
            if len(self._failures) > 10_000:  # forget quiet addresses now and then
                for quiet in [a for a in self._failures if not self._recent(a)]:
                    del self._failures[quiet]
            if len(self._recent(address)) >= self.limit:
                raise TooManyAttemptsError(
                    "too many failed sign-ins from this address: wait a minute and try again"
                )

    def failed(self, address: str) -> None:
        with self._lock:
            self._recent(address).append(time.monotonic())

    def _recent(self, address: str) -> deque[float]:
        recent = self._failures.setdefault(address, deque())
        cutoff = time.monotonic() - self.window_s
        while recent and recent[0] < cutoff:
            recent.popleft()
        return recent


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
            raise FormRefusedError("the form expired or came from elsewhere: reload the page")

    def seal(self, value: str) -> str:
        """A value a page hands back in a form: encrypted (an inspector may not read a patient's
        pseudonym), unforgeable, and valid in this session only."""
        nonce = secrets.token_bytes(12)
        box = nonce + AESGCM(self._form_key()).encrypt(nonce, value.encode(), None)
        return base64.urlsafe_b64encode(box).decode()

    def unseal(self, sealed: str) -> str:
        try:
            box = base64.b64decode(sealed.encode(), altchars=b"-_", validate=True)
            return AESGCM(self._form_key()).decrypt(box[:12], box[12:], None).decode()
        except (InvalidTag, ValueError, binascii.Error) as e:
            raise FormRefusedError("the form was altered or belongs to another session") from e

    def _form_key(self) -> bytes:
        return hashlib.sha256(b"emr-archive.portal.form\0" + self.token.encode()).digest()


@dataclass
class Portal:
    """The application's state: settings, the retrieval API, the clock, the export pool."""

    settings: Settings
    retrieval: Retrieval
    clock: Callable[[], datetime]
    templates: Jinja2Templates = field(init=False)
    pool: Executor | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    throttle: FailureThrottle = field(default_factory=FailureThrottle)
    # Exports waiting or running; beyond this the portal answers 503 rather than queue more.
    export_slots: threading.BoundedSemaphore = field(init=False)
    retention_classes: list[str] = field(init=False)

    def __post_init__(self) -> None:
        directory = Path(str(resources.files("portal").joinpath("templates")))
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(directory),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.templates = Jinja2Templates(env=env)
        self.export_slots = threading.BoundedSemaphore(2 * self.settings.portal.export_workers)
        # For the search form's class list: read once, not on every page.
        policy = load_policy(self.settings.archive.retention_policy)
        self.retention_classes = [c.class_id for c in policy.classes]

    @property
    def cookie(self) -> str:
        return SECURE_SESSION_COOKIE if self.settings.portal.secure_cookies else SESSION_COOKIE

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self.lock:
            return fn(*args, **kwargs)

    def caller(self, request: Request) -> Caller:
        """The authenticated caller, or NotSignedIn / AuthenticationError (audited)."""
        token = request.cookies.get(self.cookie)
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        if not token:
            raise NotSignedInError("sign in first")
        address = client_address(request)
        self.throttle.check(address)
        try:
            principal = self.call(self.retrieval.authenticate, token, now=self.clock())
        except AuthenticationError:
            self.throttle.failed(address)
            raise
        return Caller(principal, token)

    def render(
        self,
        request: Request,
        template: str,
        *,
        caller: Caller | None = None,
        status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        lang = i18n.language(
            request.cookies.get(LANG_COOKIE), request.headers.get("accept-language")
        )
        page = {
            "request": request,
            "t": i18n.translator(lang),
            "lang": lang,
            "caller": caller,
            "nav": _nav(caller),
            "path": request.url.path,
            **context,
        }
        return self.templates.TemplateResponse(request, template, page, status_code=status)


def client_address(request: Request) -> str:
    """The caller's address (uvicorn puts the proxy's X-Forwarded-For here if trusted)."""
    return request.client.host if request.client else "unknown"


def _nav(caller: Caller | None) -> list[tuple[str, str]]:
    """Only the pages the role may use (the handlers still check: this is convenience)."""
    if caller is None:
        return []
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

"""What every portal page shares: the caller's session, CSRF tokens, templates, the lock.

Sessions are the retrieval tokens (:class:`retrieval.access.TokenService`: signed, expiring,
revocable at logout) carried in an HttpOnly, SameSite=Strict cookie, or in an
``Authorization: Bearer`` header for scripts and a future OIDC front end. Every state-changing
form carries a CSRF token, an HMAC of the session under the server's form secret
(``<access_dir>/portal-form.key``, 0600), and POSTs from another origin are refused before they
reach a handler.

One :class:`Retrieval` serves all request threads. Its record, grant and log reads run behind one
lock (they share caches that are not thread-safe) and are short; what is slow stays outside it:
a password check (~50 ms of scrypt) takes no portal lock, and the audit event a call leaves is
written (an S3 PUT) after the lock is released (:meth:`Retrieval.audit_after`). Exports, the one
long call, run in worker processes (:mod:`portal.exports`).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import secrets
import threading
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

from archive.core.atomic import write_atomic
from portal import i18n
from portal.errors import FormRefusedError, NotSignedInError, TooManyAttemptsError
from portal.settings import PortalAppSettings as Settings
from portal.throttle import AuthThrottle, PasswordChecks
from retention import load_policy
from retrieval import (
    PERMISSIONS,
    Action,
    AuthenticationError,
    Principal,
    Retrieval,
    Role,
    Session,
    TokenRefusedError,
    access_dir,
)

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


@dataclass(frozen=True, slots=True)
class Caller:
    principal: Principal
    token: str
    form_secret: bytes = field(repr=False)

    @property
    def csrf(self) -> str:
        # Bound to the session and to the server's secret: the token alone (a copy in a CLI
        # token file, a proxy's log) does not make it.
        return self._keyed(b"emr-archive.portal.csrf\0").hex()

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
        return self._keyed(b"emr-archive.portal.form\0")

    def _keyed(self, domain: bytes) -> bytes:
        return hmac.new(self.form_secret, domain + self.token.encode(), hashlib.sha256).digest()


def form_secret(settings: Settings) -> bytes:
    """The secret CSRF tokens and sealed fields are keyed with: made 0600 at first start beside
    the token key; every portal process of the site reads the same one."""
    directory = access_dir(settings)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / "portal-form.key"
    with contextlib.suppress(FileExistsError):  # the first of two starting processes wins
        write_atomic(path, secrets.token_bytes(32), exclusive=True)
    return path.read_bytes()


@dataclass
class Portal:
    """The application's state: settings, the retrieval API, the clock, the export pool."""

    settings: Settings
    retrieval: Retrieval
    clock: Callable[[], datetime]
    templates: Jinja2Templates = field(init=False)
    pool: Executor | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    throttle: AuthThrottle = field(default_factory=AuthThrottle)
    password_checks: PasswordChecks = field(default_factory=PasswordChecks)
    form_secret: bytes = field(init=False, repr=False)
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
        self.form_secret = form_secret(self.settings)
        self.export_slots = threading.BoundedSemaphore(2 * self.settings.portal.export_workers)
        # For the search form's class list: read once, not on every page.
        policy = load_policy(self.settings.archive.retention_policy)
        self.retention_classes = [c.class_id for c in policy.classes]

    @property
    def cookie(self) -> str:
        return SECURE_SESSION_COOKIE if self.settings.portal.secure_cookies else SESSION_COOKIE

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A service call under the portal lock; its audit event is written once it is released."""
        with self.retrieval.audit_after(self.clock), self.lock:
            return fn(*args, **kwargs)

    def login(self, request: Request, username: str, password: str) -> Session:
        """A password check, throttled before scrypt (:mod:`portal.throttle`), one at a time
        (:class:`PasswordChecks`: a full queue is refused without hashing) and outside the portal
        lock; a refusal is counted per address and window (audited at its end). The check's
        audit event is written after its turn is given up."""
        address = client_address(request)
        try:
            with self.retrieval.audit_after(self.clock):
                self.throttle.check(address, username)
                with self.password_checks.slot():
                    # Again: a budget may have been spent by the checks this one waited behind.
                    self.throttle.check(address, username)
                    return self.retrieval.login(
                        username, password, now=self.clock(), source=address
                    )
        except TooManyAttemptsError as e:
            self.retrieval.tallied("auth.login", address, username, e, self.clock())
            raise
        except AuthenticationError:
            self.throttle.failed(address, username)
            raise

    def caller(self, request: Request) -> Caller:
        """The authenticated caller, or NotSignedIn / AuthenticationError (counted, audited)."""
        token = request.cookies.get(self.cookie)
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        if not token:
            raise NotSignedInError("sign in first")
        address = client_address(request)
        try:
            principal = self.call(
                self.retrieval.authenticate, token, now=self.clock(), source=address
            )
        except TokenRefusedError as e:
            self.throttle.failed(address, e.subject)
            raise
        except AuthenticationError:
            self.throttle.failed(address, "(token)")
            raise
        return Caller(principal, token, self.form_secret)

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

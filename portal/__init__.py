"""The inspectors' web portal: server-rendered pages on the retrieval service.

In: settings (:class:`PortalAppSettings`) and, for tests, a :class:`retrieval.Retrieval` and a
clock. Out: a FastAPI application (:func:`create_app`) to serve behind a TLS proxy, or in a
thread of this process (:func:`in_thread`). Pages sign people in, search, show and export
dossiers, manage grants and show the audit log; the service decides who may and records it.

- ``app``: the application's wiring; ``routes``: one router per area;
- ``deps``: the dependencies routes declare (``PortalDep``, ``CurrentUser``);
- ``web``: what pages share (sessions, CSRF, sealed form fields, templates, the lock);
- ``throttle``: failed sign-ins limited per account, per address and overall;
- ``guard``: security headers and the cross-origin check; ``handlers``: errors as pages;
- ``exports``: dossier exports in worker processes; ``i18n``: Vietnamese and English labels.

The names below are loaded on first use: the settings classes are read by every CLI command,
which must not pay for FastAPI and the retrieval service to start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archive.core.lazy import lazy_exports

__all__ = [
    "AuthThrottle",
    "Caller",
    "CurrentUser",
    "FormRefusedError",
    "NotSignedInError",
    "OptionalUser",
    "PasswordChecks",
    "Portal",
    "PortalAppSettings",
    "PortalDep",
    "PortalSettings",
    "TooManyAttemptsError",
    "audited",
    "create_app",
    "cross_origin",
    "in_thread",
    "local_path",
    "status_of",
]

if TYPE_CHECKING:
    from portal.app import create_app
    from portal.deps import CurrentUser, OptionalUser, PortalDep
    from portal.errors import (
        FormRefusedError,
        NotSignedInError,
        TooManyAttemptsError,
        audited,
        status_of,
    )
    from portal.guard import cross_origin
    from portal.serve import in_thread
    from portal.settings import PortalAppSettings, PortalSettings
    from portal.throttle import AuthThrottle, PasswordChecks
    from portal.web import Caller, Portal, local_path
else:
    __getattr__ = lazy_exports(
        __name__,
        __all__,
        ("settings", "errors", "serve", "throttle", "web", "deps", "guard", "app"),
    )

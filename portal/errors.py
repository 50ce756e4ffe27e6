"""The portal's own refusals, and the HTTP status a page gives each archive error.

Every error the archive raises carries its ``http_status`` (:class:`archive.core.errors.
ArchiveError`); :func:`status_of` is the one place the portal reads it. The portal adds three
refusals of its own, answered before the archive is asked and so never audited by it: no session
at all, a form that fails its CSRF or seal check, and an address that failed too often.
"""

from __future__ import annotations

from typing import ClassVar, Final

from archive.core.errors import ArchiveError
from retrieval import AccessDeniedError, AuthenticationError


class NotSignedInError(AuthenticationError):
    """No session at all (a browser is sent to the sign-in page; an API caller gets 401)."""


class FormRefusedError(AccessDeniedError):
    """403 for a form without this session's CSRF token or with an altered sealed field: refused
    by the portal before the archive is asked, so not an audit event (it is logged)."""


class TooManyAttemptsError(ArchiveError):
    """429: this address failed to authenticate too often; answered before any audit write."""

    http_status: ClassVar[int] = 429
    label: ClassVar[str] = "too many attempts"


# The statuses a page answers as the error states them. Any other archive error (the root's 500,
# ObjectNotFoundError's 404) is a request the archive cannot answer: 400 with its message, which
# says what to do next. A 500 page is only for what is not an ArchiveError (portal.guard).
_AS_STATED: Final = frozenset({401, 403, 429, 503})


def status_of(error: ArchiveError) -> int:
    return error.http_status if error.http_status in _AS_STATED else 400


def audited(error: Exception) -> bool:
    """Whether the archive recorded this refusal (the page says so only then)."""
    return isinstance(error, AuthenticationError | AccessDeniedError) and not isinstance(
        error, FormRefusedError | NotSignedInError
    )

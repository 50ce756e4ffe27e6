"""Errors of inspector retrieval: who is asking (401), whether they may (403), and a dossier that
cannot be exported.

A refused token says whose it was (:class:`TokenRefusedError`), so the audit log can name the
account a replayed or expired token belonged to; it crosses the portal's export worker processes,
so it pickles with its fields.
"""

from __future__ import annotations

from typing import Any, ClassVar

from archive.core.errors import ArchiveError


class AuthenticationError(ArchiveError):
    """No valid identity: wrong password, unknown user, bad, expired or revoked token (401)."""

    exit_code: ClassVar[int] = 3
    http_status: ClassVar[int] = 401
    label: ClassVar[str] = "not signed in"


class AccessDeniedError(ArchiveError):
    """The identity is known but may not do this (403): role or grant does not allow it."""

    exit_code: ClassVar[int] = 4
    http_status: ClassVar[int] = 403
    label: ClassVar[str] = "refused"


class TokenRefusedError(AuthenticationError):
    """A token whose signature holds but which is refused (expired, logged out, account changed):
    it names its account and token id, so the audit log can say whose token was replayed."""

    def __init__(self, message: str, *, subject: str, token_id: str) -> None:
        super().__init__(message)
        self.subject, self.token_id = subject, token_id

    def __reduce__(self) -> tuple[Any, ...]:
        return (_token_refused, (str(self), self.subject, self.token_id))


def _token_refused(message: str, subject: str, token_id: str) -> TokenRefusedError:
    return TokenRefusedError(message, subject=subject, token_id=token_id)


class DossierError(ArchiveError):
    """A dossier could not be exported; nothing partial is left behind."""

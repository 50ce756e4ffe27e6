"""Errors of inspector retrieval: who is asking (401) and whether they may (403)."""

from __future__ import annotations

from typing import ClassVar

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

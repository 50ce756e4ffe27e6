"""Errors of the embedded stack: processes that do not start or answer, an unusable dev PKI."""

from __future__ import annotations

from archive.core.errors import ArchiveError


class StackError(ArchiveError):
    """The embedded development stack failed to start, stop or answer its health check."""


class PkiError(ArchiveError):
    """Certificates, signing keys or the timestamp/OCSP/CRL service are unusable."""

"""What signing returns per document: a signed document, or a failure with a reason code.

Outcomes cross process boundaries (plain frozen dataclasses of bytes, strings and times). An
exception raised while signing one document becomes that document's :class:`SignFailure` here:
``retryable`` ones (trust services down) go to the next run unchanged, the others need a look.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pyhanko.pdf_utils.misc import PdfError
from pyhanko.sign.general import SigningError as PyHankoSigningError

from archive.core.errors import (
    CertificateRefusedError,
    RemoteSignerUnavailableError,
    RevocationUnavailableError,
    TokenUnavailableError,
    TrustServiceUnavailableError,
)
from archive.sign.certificates import TransientError

__all__ = ["SignFailure", "SignOutcome", "SignedDocument", "failure_from"]


@dataclass(frozen=True, slots=True)
class SignedDocument:
    """A B-LTA signed document and what the catalog and the renewal horizon need about it."""

    index: int
    pdf: bytes
    sha256: str
    signer_cert_sha256: str
    signing_time: datetime  # genTime of the signature timestamp token
    timestamp_time: datetime  # genTime of the document timestamp
    tsa_cert_sha256: str  # the TSA certificate the document timestamp relies on
    tsa_cert_not_after: datetime  # renew (new document timestamp) before this
    timestamp_hash_algorithm: str


@dataclass(frozen=True, slots=True)
class SignFailure:
    """A document left unsigned; ``retryable`` ones go to the next run unchanged."""

    index: int
    reason_code: str  # sign.timestamp_unavailable, sign.revocation_unavailable, sign.invalid_pdf…
    message: str
    retryable: bool


SignOutcome = SignedDocument | SignFailure


def failure_from(index: int, error: Exception) -> SignFailure:
    """What a document-level error means for the caller: retry later, or look at it."""
    if isinstance(error, TransientError):
        error = error.final
    if isinstance(error, RevocationUnavailableError):
        return SignFailure(index, "sign.revocation_unavailable", str(error), retryable=True)
    if isinstance(error, TokenUnavailableError):  # removed, session broken, PIN locked
        return SignFailure(index, "sign.token_unavailable", str(error), retryable=True)
    if isinstance(error, RemoteSignerUnavailableError):
        return SignFailure(index, "sign.remote_signer_unavailable", str(error), retryable=True)
    if isinstance(error, TrustServiceUnavailableError):
        return SignFailure(index, "sign.timestamp_unavailable", str(error), retryable=True)
    if isinstance(error, CertificateRefusedError):  # a TSA certificate first seen mid-run
        return SignFailure(index, "sign.tsa_refused", str(error), retryable=True)
    if isinstance(error, PdfError | PyHankoSigningError):
        message = f"pyHanko cannot sign this PDF ({type(error).__name__}: {error})"
        return SignFailure(index, "sign.invalid_pdf", message, retryable=False)
    message = f"signing raised {type(error).__name__}: {error}"
    return SignFailure(index, "sign.error", message[:300], retryable=False)

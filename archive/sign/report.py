"""The result of validating a PDF's signatures: one check per signature or document timestamp,
and a bottom line.

Frozen values the verifier, the pipeline's read-back and the CLI consume; they carry reason codes
(``sig.ok``, ``sig.digest_mismatch``…), certificate fingerprints and times, never document content.
``passed`` is true only with at least one check and every check passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

__all__ = ["Kind", "SignatureCheck", "SignatureReport"]


class Kind(StrEnum):
    SIGNATURE = "signature"
    DOCUMENT_TIMESTAMP = "document_timestamp"


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """One embedded signature or document timestamp, judged on its own."""

    field_name: str
    kind: Kind
    revision: int  # the PDF revision it signs (0 = the original document)
    indication: str  # AdES: PASSED, INDETERMINATE or FAILED ("" if not reached)
    subindication: str  # AdES, e.g. OK, NO_CERTIFICATE_CHAIN_FOUND
    intact: bool  # the digest over /ByteRange matches
    valid: bool  # the cryptographic signature verifies
    signer_cert_sha256: str | None
    signer_subject: str | None
    signing_time: datetime | None  # trusted: from the (signature) timestamp token
    has_signature_timestamp: bool
    modification_level: str | None  # pyHanko's ModificationLevel name after this revision
    coverage: str | None  # pyHanko's SignatureCoverageLevel name
    passed: bool
    reason_code: str
    reason: str


@dataclass(frozen=True, slots=True)
class SignatureReport:
    """Bottom line over all signatures and document timestamps of one PDF."""

    checks: tuple[SignatureCheck, ...]
    passed: bool
    reason_code: str
    reason: str
    validated_at: datetime  # when this report was made
    as_of: datetime  # the time the AdES validation used: the newest document timestamp's
    log: tuple[str, ...] = ()  # pyHanko's log lines while validating (archive.sign.library_log)

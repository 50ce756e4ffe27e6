"""How pyHanko's findings become one reason code and a sentence per signature or timestamp.

pyHanko's statuses and AdES indications go in; a :class:`SignatureCheck` with a reason code comes
out. The order of the rules is the order in which an inspector asks: were the bytes changed, is
the signer the hospital (``archive.sign.trust``), was the signer's certificate usable when it
signed, does it chain to our roots, was it revoked, is the proof complete (timestamp, then
B-LTA), did the hospital's TSAs make the timestamps. Reasons name fields, certificates and
dates only: no document content, so no PHI.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import Enum

from asn1crypto import x509
from pyhanko.sign.ades.report import AdESFailure, AdESIndeterminate, AdESPassed, AdESSubIndic
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import EmbeddedPdfSignature, SignatureCoverageLevel
from pyhanko.sign.validation.ades import AdESLTAValidationResult
from pyhanko.sign.validation.status import DocumentTimestampStatus, PdfSignatureStatus

from archive.sign.report import Kind, SignatureCheck
from archive.sign.structure import classify_error

__all__ = [
    "INTEGRITY_CODES",
    "error_check",
    "judge_integrity",
    "judge_signature",
    "make_check",
    "still_valid_now",
    "timestamp_trust_reason",
]

# "The bytes are not what was signed": said before who signed, which a changed file cannot prove.
INTEGRITY_CODES = frozenset(
    {
        "sig.digest_mismatch",
        "sig.invalid_signature",
        "sig.coverage_gap",
        "sig.modified_after_signing",
        # the structure is hostile or broken (archive.sign.structure)
        "sig.malformed",
        "sig.cms_invalid",
        "sig.byterange_overlap",
        "sig.timestamp_duplicated",
        "sig.signature_duplicated",
    }
)
_ACCEPTED_MODIFICATIONS = frozenset({ModificationLevel.NONE, ModificationLevel.LTA_UPDATES})
_UNTRUSTED = frozenset({AdESIndeterminate.NO_CERTIFICATE_CHAIN_FOUND})
_REVOKED = frozenset(
    {AdESFailure.REVOKED, AdESIndeterminate.REVOKED_NO_POE, AdESIndeterminate.REVOKED_CA_NO_POE}
)
_MISSING_LTV = frozenset(
    {
        AdESIndeterminate.TRY_LATER,
        AdESIndeterminate.NO_POE,
        AdESIndeterminate.REVOCATION_OUT_OF_BOUNDS_NO_POE,
        AdESIndeterminate.OUT_OF_BOUNDS_NO_POE,
        AdESIndeterminate.OUT_OF_BOUNDS_NOT_REVOKED,
    }
)


def judge_signature(
    sig: EmbeddedPdfSignature,
    result: AdESLTAValidationResult,
    status: PdfSignatureStatus | None,
    has_ts: bool,
    signing_time: datetime | None,
    chains_to_roots: bool,
) -> tuple[str, str]:
    subindic = result.ades_subindic
    if status is None:
        return _by_subindication(subindic, result.failure_msg)
    code, reason = judge_integrity(status)
    if code != "sig.ok":
        return code, reason
    expiry = _expired_at_signing(sig.signer_cert, signing_time or result.best_signature_time)
    if expiry is not None:
        return expiry
    if not chains_to_roots:  # to the signer trust roots, not merely to a TSA's
        return "sig.untrusted_chain", "the signer's certificate does not chain to a trust root"
    if subindic in _REVOKED:
        return "sig.revoked", "the signer's certificate was revoked"
    if not has_ts:
        return "sig.no_timestamp", "the signature has no signature timestamp (not B-T or higher)"
    if result.oldest_evidence_record_timestamp is None:
        return "sig.ltv_incomplete", "no valid document timestamp follows the signature (not B-LTA)"
    return _by_subindication(subindic, result.failure_msg)


def judge_integrity(status: PdfSignatureStatus | DocumentTimestampStatus) -> tuple[str, str]:
    if not status.intact:
        return "sig.digest_mismatch", "the signed bytes were changed (digest mismatch)"
    if not status.valid:
        return "sig.invalid_signature", "the cryptographic signature does not verify"
    if status.coverage is None or status.coverage < SignatureCoverageLevel.ENTIRE_REVISION:
        return "sig.coverage_gap", "the /ByteRange leaves part of its revision uncovered"
    level = status.modification_level
    if level not in _ACCEPTED_MODIFICATIONS or status.docmdp_ok is False:
        name = level.name if level is not None else "unknown"
        return (
            "sig.modified_after_signing",
            f"the document was changed after signing ({name}); only validation data and "
            "document timestamps may follow a signature",
        )
    return "sig.ok", "intact"


def still_valid_now(tsa_cert: x509.Certificate, now: datetime) -> tuple[str, str]:
    validity = tsa_cert["tbs_certificate"]["validity"]
    not_before, not_after = validity["not_before"].native, validity["not_after"].native
    if not not_before <= now <= not_after:
        return (
            "sig.timestamp_expired",
            f"the newest document timestamp's TSA certificate expired on {not_after:%Y-%m-%d}: "
            "the document timestamp was not renewed in time",
        )
    return (
        "sig.ok",
        f"valid; the TSA certificate of the newest timestamp is valid until {not_after:%Y-%m-%d}",
    )


def _expired_at_signing(cert: x509.Certificate, at: datetime | None) -> tuple[str, str] | None:
    if at is None:
        return None
    validity = cert["tbs_certificate"]["validity"]
    not_before, not_after = validity["not_before"].native, validity["not_after"].native
    if at > not_after:
        return "sig.expired_at_signing", f"the signer's certificate expired on {not_after:%Y-%m-%d}"
    if at < not_before:
        return (
            "sig.not_yet_valid_at_signing",
            f"the signer's certificate was not valid before {not_before:%Y-%m-%d}",
        )
    return None


def _by_subindication(subindic: AdESSubIndic, failure_msg: str | None) -> tuple[str, str]:
    if subindic == AdESPassed.OK:
        return "sig.ok", "valid at B-LTA, offline"
    if subindic == AdESFailure.HASH_FAILURE:
        return "sig.digest_mismatch", "the signed bytes were changed (digest mismatch)"
    if subindic == AdESFailure.SIG_CRYPTO_FAILURE:
        return "sig.invalid_signature", "the cryptographic signature does not verify"
    if subindic in _UNTRUSTED:
        return "sig.untrusted_chain", "the signer's certificate does not chain to a trust root"
    if subindic in _REVOKED:
        return "sig.revoked", "the signer's certificate was revoked"
    if subindic in _MISSING_LTV:
        return (
            "sig.ltv_incomplete",
            f"validation data is missing or insufficient ({_name(subindic)})",
        )
    detail = f"AdES {subindic.status.name}/{_name(subindic)}"
    return f"sig.{subindic.status.name.lower()}", f"{detail}: {failure_msg or 'no detail'}"


def timestamp_trust_reason(status: DocumentTimestampStatus) -> str:
    if status.trust_problem_indic is not None:
        return f"the document timestamp is not trusted ({_name(status.trust_problem_indic)})"
    return "the document timestamp's TSA certificate could not be validated offline"


def make_check(
    sig: EmbeddedPdfSignature,
    kind: Kind,
    subindic: AdESSubIndic,
    status: PdfSignatureStatus | DocumentTimestampStatus | None,
    code: str,
    reason: str,
    *,
    signing_time: datetime | None,
    has_signature_timestamp: bool,
) -> SignatureCheck:
    cert = sig.signer_cert
    level = status.modification_level if status is not None else None
    coverage = status.coverage if status is not None else None
    return SignatureCheck(
        field_name=str(sig.field_name),
        kind=kind,
        revision=sig.signed_revision,
        indication=subindic.status.name,
        subindication=_name(subindic),
        intact=bool(status and status.intact),
        valid=bool(status and status.valid),
        signer_cert_sha256=hashlib.sha256(cert.dump()).hexdigest(),
        signer_subject=cert.subject.human_friendly,
        signing_time=signing_time,
        has_signature_timestamp=has_signature_timestamp,
        modification_level=level.name if level is not None else None,
        coverage=coverage.name if coverage is not None else None,
        passed=code == "sig.ok",
        reason_code=code,
        reason=reason,
    )


_ERROR_REASONS = {
    "sig.cms_invalid": "its CMS object is not one well-formed SignedData",
    "sig.malformed": "the objects it refers to do not parse as strict PDF",
}


def error_check(sig: EmbeddedPdfSignature, kind: Kind, error: Exception) -> SignatureCheck:
    code = classify_error(error)
    try:
        name, revision = str(sig.field_name), sig.signed_revision
    except Exception:  # noqa: BLE001 - the signature dictionary itself may be broken
        name, revision = "?", -1
    return SignatureCheck(
        field_name=name,
        kind=kind,
        revision=revision,
        indication="",
        subindication="",
        intact=False,
        valid=False,
        signer_cert_sha256=None,
        signer_subject=None,
        signing_time=None,
        has_signature_timestamp=False,
        modification_level=None,
        coverage=None,
        passed=False,
        reason_code=code,
        reason=_ERROR_REASONS.get(code, f"validation raised {type(error).__name__}"),
    )


def _name(subindic: AdESSubIndic) -> str:
    return str(subindic.name) if isinstance(subindic, Enum) else str(subindic)

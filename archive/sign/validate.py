"""Offline validation of a document's PAdES signatures and document timestamps.

Used by every path that validates a PDF: the verifier (weekly, offline), ``verify-file``, the
archive run's read-back, the retrieval service and the demo. Nothing is fetched: only what the
file carries (its DSS and timestamps) and a :class:`~archive.sign.trust.TrustPolicy` are used.
Besides the AdES verdict, the policy decides who may have signed (one of the hospital's signing
certificates, else ``sig.unknown_signer``) and who may have timestamped (a TSA under the TSA
trust roots, else ``sig.untrusted_tsa``); both reasons name the certificate's subject and
SHA-256.

How a B-LTA document is judged offline, by default:

* **As of its newest document timestamp**, every signature goes through pyHanko's AdES B-LTA
  procedure (ETSI EN 319 102-1 § 5.6.3) and every document timestamp through the timestamp
  procedure, with the embedded OCSP responses and CRLs. That is the moment the archive last
  vouched for the document; the embedded revocation data was current then. Judged "now"
  instead, a fully valid document would fail as soon as its OCSP responses expire (10 minutes
  for the development PKI), because the newest TSA certificate's revocation status *today*
  cannot be known without going online.
* **Now**, the newest document timestamp's TSA certificate must still be within its validity
  period (else the renewal was missed), and the document must not have changed since.
* Always, pyHanko's incremental-update analysis must show that nothing but validation data and
  document timestamps followed a signature, and the signed byte ranges must leave no gap.

Pass ``validation_time`` to judge everything as of that moment instead.

Fails closed: no signature, an unreadable file or an exception inside pyHanko is a failure with
a reason code, never a pass. A file that does not parse strictly or whose structure is anomalous
(``archive.sign.structure``: ``sig.malformed``, ``sig.unknown_subfilter``, ``sig.cms_invalid``,
``sig.byterange_overlap``, ``sig.timestamp_duplicated``) is a failure with that reason; only an
exception nobody recognised stays the indeterminate ``sig.error``. pyHanko's log goes into the
report, not onto stderr. Messages carry no document content (no PHI): only field names, object
numbers, certificate subjects, fingerprints, times and pyHanko's own classifications.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import re
from collections.abc import Sequence
from datetime import UTC, datetime

from asn1crypto import x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESIndeterminate, AdESPassed
from pyhanko.sign.general import extract_certificate_info
from pyhanko.sign.validation import (
    EmbeddedPdfSignature,
    async_validate_pdf_timestamp,
    generic_cms,
)
from pyhanko.sign.validation.ades import ades_lta_validation
from pyhanko.sign.validation.policy_decl import (
    CertificateFetchingRule,
    PdfSignatureValidationSpec,
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko.sign.validation.status import PdfSignatureStatus
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.ltv.types import ValidationTimingInfo
from pyhanko_certvalidator.policy_decl import REQUIRE_REVINFO, CertRevTrustPolicy
from pyhanko_certvalidator.registry import SimpleTrustManager

from archive.sign import diff_policy
from archive.sign.contexts import DocumentContexts
from archive.sign.library_log import captured_library_log
from archive.sign.report import Kind, SignatureCheck, SignatureReport
from archive.sign.structure import (
    cms_problem,
    duplicated,
    malformed_page_tree,
    overlapping_byte_range,
    unknown_subfilter,
)
from archive.sign.trust import TrustPolicy, describe
from archive.sign.verdicts import (
    INTEGRITY_CODES,
    error_check,
    judge_integrity,
    judge_signature,
    make_check,
    still_valid_now,
    timestamp_trust_reason,
)

__all__ = ["async_validate_pdf_signatures", "validate_pdf_signatures"]


def validate_pdf_signatures(
    pdf: bytes,
    *,
    trust: TrustPolicy,
    now: datetime | None = None,
    validation_time: datetime | None = None,
    reader: PdfFileReader | None = None,
) -> SignatureReport:
    """Validate every signature and document timestamp of ``pdf`` offline (B-LTA).

    ``now`` (default: the clock) is when the newest TSA certificate must still be valid;
    ``validation_time`` replaces "as of the newest document timestamp" for everything.
    ``reader``: a strict reader of these very bytes that other checks share (parsed once).
    """
    validation = async_validate_pdf_signatures(
        pdf, trust=trust, now=now, validation_time=validation_time, reader=reader
    )
    return asyncio.run(validation)


async def async_validate_pdf_signatures(
    pdf: bytes,
    *,
    trust: TrustPolicy,
    now: datetime | None = None,
    validation_time: datetime | None = None,
    reader: PdfFileReader | None = None,
) -> SignatureReport:
    """:func:`validate_pdf_signatures` for a caller already inside an event loop."""
    now = now or datetime.now(UTC)
    with captured_library_log() as log:
        report = await _validate(pdf, trust, now, validation_time, reader)
    return dataclasses.replace(report, log=tuple(log))


async def _validate(
    pdf: bytes,
    trust: TrustPolicy,
    now: datetime,
    validation_time: datetime | None,
    shared: PdfFileReader | None,
) -> SignatureReport:
    if not trust.signer_roots or not trust.tsa_roots:
        return _report((), now, now, "sig.error", "no trust roots given: nothing can be trusted")
    try:
        reader = shared or PdfFileReader(io.BytesIO(pdf), strict=True)
    except Exception as e:  # noqa: BLE001 - whatever the parser trips on, the file is at fault
        reason = f"the file does not parse as a strict PDF ({type(e).__name__})"
        return _report((), now, now, "sig.malformed", reason)
    try:
        # Before pyHanko reads the signatures: it skips a /SubFilter it does not know.
        finding = malformed_page_tree(reader) or unknown_subfilter(reader)
        signatures = list(reader.embedded_signatures)
        finding = finding or overlapping_byte_range(signatures, len(pdf)) or duplicated(signatures)
        as_of = validation_time or _newest_timestamp_time(signatures) or now
    except Exception as e:  # noqa: BLE001 - the signature fields themselves are broken
        return _report((), now, now, *_unreadable_signatures(reader, e))
    if finding is not None:
        return _report((), now, as_of, *finding)
    if not any(s.sig_object_type == "/Sig" for s in signatures):
        return _report((), now, as_of, "sig.missing", "the document carries no signature")
    validator = _Validator(trust, as_of, now=None if validation_time else now)
    checks = [await validator.check(s, is_newest=s is signatures[-1]) for s in signatures]
    # Changed bytes explain every later finding (a forged timestamp breaks the LTA chain too).
    failures = [c for c in checks if not c.passed]
    failed = next((c for c in failures if c.reason_code in INTEGRITY_CODES), None)
    failed = failed or next(iter(failures), None)
    if failed is not None:
        reason = f"{failed.field_name}: {failed.reason}"
        return _report(checks, now, as_of, failed.reason_code, reason)
    if _bytes_after_last_revision(signatures[0].reader, pdf):
        # pyHanko's analysis sees no revision there, but a lenient reader might find one.
        reason = "bytes follow the end of the last revision, covered by no signature"
        return _report(checks, now, as_of, "sig.coverage_gap", reason)
    reason = f"{len(checks)} signature(s) and document timestamp(s) valid as of {as_of:%Y-%m-%d}"
    return _report(checks, now, as_of, "sig.ok", reason)


def _unreadable_signatures(reader: PdfFileReader, error: Exception) -> tuple[str, str]:
    try:
        finding = cms_problem(reader)
    except Exception:  # noqa: BLE001 - then the field tree itself is what is broken
        finding = None
    if finding is not None:
        return finding
    return "sig.malformed", f"the signature fields cannot be read ({type(error).__name__})"


def _bytes_after_last_revision(reader: PdfFileReader, pdf: bytes) -> bool:
    last = reader.xrefs.total_revisions - 1
    startxref = reader.xrefs.get_startxref_for_revision(last)
    ends = list(re.finditer(rb"startxref\s+%d\s+%%%%EOF" % startxref, pdf))
    return not ends or bool(pdf[ends[-1].end() :].strip(b"\r\n\t \x00"))


def _newest_timestamp_time(signatures: Sequence[EmbeddedPdfSignature]) -> datetime | None:
    """genTime of the newest document timestamp; it is validated like the rest afterwards."""
    timestamps = [s for s in signatures if s.sig_object_type == "/DocTimeStamp"]
    if not timestamps:
        return None
    info = timestamps[-1].signed_data["encap_content_info"]["content"].parsed
    gen_time: datetime = info["gen_time"].native
    return gen_time


def _report(
    checks: Sequence[SignatureCheck], now: datetime, as_of: datetime, code: str, reason: str
) -> SignatureReport:
    return SignatureReport(tuple(checks), code == "sig.ok", code, reason, now, as_of)


class _Validator:
    """One document's validation: the policy and the evidence-record verdict shared by its
    signatures and timestamps."""

    def __init__(self, trust: TrustPolicy, as_of: datetime, *, now: datetime | None) -> None:
        self._trust = trust
        roots = trust.all_roots  # pyHanko's verdict; who may sign or timestamp is judged after
        self._as_of = as_of
        self._now = now  # None: judge everything as of ``as_of`` only
        self._timing = ValidationTimingInfo(as_of, as_of, point_in_time_validation=True)
        self._spec = PdfSignatureValidationSpec(
            SignatureValidationSpec(
                cert_validation_policy=CertValidationPolicySpec(
                    trust_manager=SimpleTrustManager.build(roots),
                    revinfo_policy=CertRevTrustPolicy(revocation_checking_policy=REQUIRE_REVINFO),
                ),
                revinfo_gathering_policy=RevocationInfoGatheringSpec(
                    online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY,
                    certificate_fetching_rule=CertificateFetchingRule.NEVER_FETCH,
                ),
            ),
            # pyHanko's standard analysis, each signature's review done once per document.
            diff_policy=diff_policy.POLICY,
        )
        self.evidence_chain_valid = False  # set by the signature's LTA validation
        self._document: DocumentContexts | None = None

    async def check(self, sig: EmbeddedPdfSignature, *, is_newest: bool) -> SignatureCheck:
        kind = Kind.SIGNATURE if sig.sig_object_type == "/Sig" else Kind.DOCUMENT_TIMESTAMP
        try:
            if kind is Kind.SIGNATURE:
                return await self._check_signature(sig)
            return await self._check_timestamp(sig, is_newest=is_newest)
        except Exception as e:  # noqa: BLE001 - fail closed; the type says enough, no PHI
            return error_check(sig, kind, e)

    async def _check_signature(self, sig: EmbeddedPdfSignature) -> SignatureCheck:
        result = await ades_lta_validation(sig, self._spec, timing_info=self._timing)
        self.evidence_chain_valid = result.oldest_evidence_record_timestamp is not None
        status: PdfSignatureStatus | None = result.api_status
        sig_ts = result.signature_timestamp_status
        ts_status = sig_ts.api_status if sig_ts is not None else None
        signing_time = getattr(ts_status, "timestamp", None)
        has_ts = any(True for _ in generic_cms.extract_tst_data_iter(sig.signer_info, signed=False))
        chains = await self._chains(sig, sig.signer_cert, self._trust.signer_roots)
        code, reason = judge_signature(sig, result, status, has_ts, signing_time, chains)
        if code not in INTEGRITY_CODES:
            code, reason = self._trust.judge_signer(sig.signer_cert) or (code, reason)
        if code == "sig.ok":
            code, reason = await self._signature_tsas(sig) or (code, reason)
        return make_check(
            sig,
            Kind.SIGNATURE,
            result.ades_subindic,
            status,
            code,
            reason,
            signing_time=signing_time,
            has_signature_timestamp=has_ts,
        )

    async def _check_timestamp(
        self, sig: EmbeddedPdfSignature, *, is_newest: bool
    ) -> SignatureCheck:
        context = self._contexts(sig).context(sig.signed_data)
        try:
            status = await async_validate_pdf_timestamp(
                sig, validation_context=context, diff_policy=diff_policy.POLICY
            )
        finally:
            await context.aclose()  # type: ignore[no-untyped-call]
        # An older timestamp whose TSA certificate has since expired is vouched for by the
        # evidence-record validation of the signature; the newest must hold on its own, now.
        trusted = status.trusted or (not is_newest and self.evidence_chain_valid)
        code, reason = judge_integrity(status)
        if code == "sig.ok":
            code, reason = await self._tsa_judgement(sig, sig.signer_cert, ()) or (code, reason)
        if code == "sig.ok" and not trusted:
            code, reason = "sig.timestamp_invalid", timestamp_trust_reason(status)
        if code == "sig.ok" and is_newest and self._now is not None:
            code, reason = still_valid_now(sig.signer_cert, self._now)
        subindic = AdESPassed.OK if trusted else AdESIndeterminate.GENERIC
        return make_check(
            sig,
            Kind.DOCUMENT_TIMESTAMP,
            subindic,
            status,
            code,
            reason,
            signing_time=status.timestamp,
            has_signature_timestamp=False,
        )

    async def _signature_tsas(self, sig: EmbeddedPdfSignature) -> tuple[str, str] | None:
        """The TSAs of the signature's own timestamps (signature and content timestamps)."""
        info = sig.signer_info
        for signed in (False, True):
            for token in generic_cms.extract_tst_data_iter(info, signed=signed):
                tsa = extract_certificate_info(token)
                found = await self._tsa_judgement(sig, tsa.signer_cert, tsa.other_certs)
                if found is not None:
                    return found
        return None

    async def _tsa_judgement(
        self, sig: EmbeddedPdfSignature, tsa: x509.Certificate, others: Sequence[x509.Certificate]
    ) -> tuple[str, str] | None:
        if await self._chains(sig, tsa, self._trust.tsa_roots, others):
            return None
        return (
            "sig.untrusted_tsa",
            f"timestamped by {describe(tsa)}, a TSA outside the TSA trust roots "
            "(EMR_ARCHIVE_SIGNER__TSA_TRUST_ROOTS)",
        )

    def _contexts(self, sig: EmbeddedPdfSignature) -> DocumentContexts:
        """The document's DSS, read on first use (inside a check: a broken DSS is that check's
        finding) and shared by its signatures and timestamps."""
        if self._document is None:
            self._document = DocumentContexts(sig.reader, self._trust.all_roots, self._as_of)
        return self._document

    async def _chains(
        self,
        sig: EmbeddedPdfSignature,
        cert: x509.Certificate,
        roots: Sequence[x509.Certificate],
        others: Sequence[x509.Certificate] = (),
    ) -> bool:
        """Whether any path leads from ``cert`` to one of ``roots`` (validity and revocation
        aside, which AdES judges): tells an untrusted signer from one whose validation data is
        missing (AdES reports both as CERTIFICATE_CHAIN_GENERAL_FAILURE), and a TSA of the
        hospital's from another that a broader trust list would accept."""
        return await self._contexts(sig).chains(sig.signed_data, cert, roots, others)

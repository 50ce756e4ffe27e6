"""Checks on one signed PDF's bytes: signature, PDF/A-3b structure, embedded data, the conversion
mark of a record digitised from paper, renewal need.

Pure functions of the bytes, the trust policy and ``now``: the record checks call them on the
unsealed document, ``emr-archive verify-file`` on an inspector's copy from anywhere. The expected
values (signer fingerprint, data sha256) come from the catalog when there is one; a file checked
on its own is judged on what it carries.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta

from pyhanko.pdf_utils.reader import PdfFileReader

from archive.core.errors import ArchiveError
from archive.evidence import WeakAlgorithms
from archive.intake import mark_problem, scanned_row
from archive.render import check_pdfa3b, extract_embedded_data, read_pdf
from archive.sign import (
    NewestTimestamp,
    SignatureReport,
    TrustPolicy,
    newest_document_timestamp,
    validate_pdf_signatures,
)
from verification.config import VerificationSettings
from verification.results import CheckResult, Renewal

SIGNATURE = "signature"
PDFA = "pdfa"
EMBEDDED_DATA = "embedded-data"
CONVERSION_MARK = "conversion-mark"
# The validator's own "could not decide" outcomes; every other non-ok code is a failure: a
# hostile or broken file earns a precise code (sig.malformed, sig.cms_invalid...), not this.
_UNDECIDED = frozenset({"sig.error"})


def check_signature(
    pdf: bytes,
    *,
    trust: TrustPolicy,
    now: datetime,
    expected_signer_sha256: str | None = None,
    reader: PdfFileReader | None = None,
) -> CheckResult:
    """Offline B-LTA validation (archive.sign.validate), which accepts only the hospital's
    signers and TSAs; with a catalog, also the record's own signer: a valid signature by another
    of the hospital's keys is not the document the archive stored."""
    report = validate_pdf_signatures(pdf, trust=trust, now=now, reader=reader)
    result = _judge_signature(report, expected_signer_sha256)
    return dataclasses.replace(result, details=report.log)


def _judge_signature(report: SignatureReport, expected_signer_sha256: str | None) -> CheckResult:
    if not report.passed:
        make = CheckResult.indeterminate if report.reason_code in _UNDECIDED else CheckResult.failed
        return make(SIGNATURE, report.reason_code, report.reason)
    signers = {c.signer_cert_sha256 for c in report.checks if c.kind == "signature"}
    if expected_signer_sha256 is not None and expected_signer_sha256 not in signers:
        found = ", ".join(sorted(f"{s[:16]}..." for s in signers if s))
        return CheckResult.failed(
            SIGNATURE,
            "sig.signer_mismatch",
            f"signed by certificate {found}, but the catalog records "
            f"{expected_signer_sha256[:16]}...",
        )
    return CheckResult.passed(SIGNATURE, report.reason, code=report.reason_code)


def check_pdfa(pdf: bytes, *, reader: PdfFileReader | None = None) -> CheckResult:
    """PDF/A-3b structure (XMP pdfaid, output intent, fonts embedded, associated file, ...)."""
    report = check_pdfa3b(pdf, reader=reader)
    if report.passed:
        return CheckResult.passed(PDFA, f"PDF/A-3b structure holds ({len(report.checks)} checks)")
    if not report.checks:
        return CheckResult.indeterminate(PDFA, "pdfa.error", "no PDF/A check ran")
    first = report.failures[0]
    return CheckResult.failed(PDFA, f"pdfa.{first.name}", report.reason)


def check_embedded_data(
    pdf: bytes, *, expected_sha256: str | None = None, reader: PdfFileReader | None = None
) -> CheckResult:
    """The embedded FHIR Bundle is there, and with a catalog, byte for byte the archived one."""
    try:
        data = extract_embedded_data(pdf, reader=reader)
    except ArchiveError as e:
        return CheckResult.failed(EMBEDDED_DATA, "data.unusable", str(e))
    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256:
        return CheckResult.failed(
            EMBEDDED_DATA,
            "data.sha256_mismatch",
            f"the embedded data hashes to {digest[:16]}..., the catalog records "
            f"{expected_sha256[:16]}...",
        )
    return CheckResult.passed(EMBEDDED_DATA, f"embedded data present, sha256 {digest[:16]}...")


def check_conversion_mark(pdf: bytes, *, reader: PdfFileReader | None = None) -> CheckResult:
    """A record converted from paper (its embedded data is a scan manifest row) shows the
    conversion mark on every page and in its XMP (Law 20/2023/QH15 art. 12); other records pass
    as not converted. Unreadable embedded data is the embedded-data check's failure, and fails
    here too: the kind of record cannot be known."""
    try:
        row = scanned_row(extract_embedded_data(pdf, reader=reader))
    except ArchiveError as e:
        return CheckResult.failed(CONVERSION_MARK, "mark.unknown_kind", str(e))
    if row is None:
        return CheckResult.passed(CONVERSION_MARK, "born digital: no conversion mark needed")
    problem = mark_problem(pdf, row)
    if problem is not None:
        return CheckResult.failed(CONVERSION_MARK, "mark.missing", problem)
    return CheckResult.passed(
        CONVERSION_MARK, "converted from paper; the mark is on every page and in the XMP"
    )


def renewal_need(
    pdf: bytes,
    *,
    now: datetime,
    settings: VerificationSettings,
    weak: WeakAlgorithms,
    proven_at: datetime | None = None,
    reader: PdfFileReader | None = None,
) -> Renewal | None:
    """Why the newest document timestamp must be renewed soon, or None, judged at ``now`` (the
    verification date: ``--at`` moves it). A document without a readable document timestamp is
    the signature check's finding, not a renewal.

    ``weak``: the dated table (``[evidence] weak_algorithms``) the evidence renewal plans by, so
    a hash is called weak here on the day the renewal and the evidence check call it weak, and
    listed once it weakens within the horizon, as an expiring certificate is. ``proven_at``: the
    moment a passing evidence record proves the PDF existed (None: none given or none passed),
    which says whether a TSA certificate that has already expired is covered by the evidence
    renewal (it is when the PDF was proven to exist before the expiry)."""
    try:
        newest = newest_document_timestamp(pdf, reader=reader)
    except ArchiveError:
        return None
    if newest is None:
        return None
    return judge_horizon(
        newest,
        now=now,
        horizon_days=settings.renewal_horizon_days,
        weak=weak,
        proven_at=proven_at,
    )


def judge_horizon(
    newest: NewestTimestamp,
    *,
    now: datetime,
    horizon_days: int,
    weak: WeakAlgorithms,
    proven_at: datetime | None,
) -> Renewal | None:
    """:func:`renewal_need`'s judgement of the newest document timestamp (pure)."""
    algorithm, not_after = newest.hash_algorithm.lower(), newest.tsa_cert_not_after
    horizon = now + timedelta(days=horizon_days)
    weak_from = weak.since.get(algorithm)
    if weak_from is not None and weak.weak_at(algorithm, horizon):
        when = (
            f"weak since {weak_from:%Y-%m-%d}"
            if weak.weak_at(algorithm, now)
            else f"weak from {weak_from:%Y-%m-%d}, within {horizon_days} days"
        )
        return Renewal(
            "horizon.weak_hash",
            f"the newest document timestamp uses {algorithm}, {when} (the dated table)",
            not_after,
            algorithm,
        )
    if not_after <= now:
        return Renewal(
            "horizon.tsa_expired",
            f"the newest document timestamp's TSA certificate expired on {not_after:%Y-%m-%d}, "
            f"before {now:%Y-%m-%d}; {_covered(not_after, proven_at)}",
            not_after,
            algorithm,
        )
    if not_after <= horizon:
        return Renewal(
            "horizon.tsa_expiring",
            f"the newest document timestamp's TSA certificate expires on "
            f"{not_after:%Y-%m-%d}, within {horizon_days} days",
            not_after,
            algorithm,
        )
    return None


def _covered(not_after: datetime, proven_at: datetime | None) -> str:
    """Whether the evidence renewal covers a lapsed document timestamp: RFC 4998 keeps the PDF
    provable only if its evidence record proves it existed before the TSA certificate ended."""
    if proven_at is None:
        return (
            "no evidence record proves the PDF existed before then (none given, or it did not "
            "pass): the PDF alone is no longer provable"
        )
    if proven_at < not_after:
        return (
            f"covered by its evidence record, which proves the PDF existed at "
            f"{proven_at:%Y-%m-%d}, before that"
        )
    return (
        f"not covered: its evidence record proves the PDF only from {proven_at:%Y-%m-%d}, "
        "after that"
    )


def verify_document(pdf: bytes, *, trust: TrustPolicy, now: datetime) -> tuple[CheckResult, ...]:
    """What ``verify-file`` reports for a PDF from anywhere: signature, PDF/A, embedded data."""
    reader = shared_reader(pdf)
    return (
        _guarded(SIGNATURE, lambda: check_signature(pdf, trust=trust, now=now, reader=reader)),
        _guarded(PDFA, lambda: check_pdfa(pdf, reader=reader)),
        _guarded(EMBEDDED_DATA, lambda: check_embedded_data(pdf, reader=reader)),
        _guarded(CONVERSION_MARK, lambda: check_conversion_mark(pdf, reader=reader)),
    )


def shared_reader(pdf: bytes) -> PdfFileReader | None:
    """One strict reader for every check of a document, so that it is parsed once; None when the
    bytes do not parse: then each check parses on its own and reports that in its own words."""
    try:
        return read_pdf(pdf)
    except Exception:  # noqa: BLE001 - each check reports the parse failure itself
        return None


def _guarded(name: str, check: Callable[[], CheckResult]) -> CheckResult:
    try:
        return check()
    except Exception as e:  # noqa: BLE001 - fail closed: a crash is never a pass
        return CheckResult.indeterminate(
            name, f"{name}.error", f"the check raised {type(e).__name__}; nothing was concluded"
        )

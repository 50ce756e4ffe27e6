"""The per-record checks. Each is a small function of the record's :class:`Evidence` returning one
:class:`CheckResult`; the :class:`~verification.verifier.Verifier` runs them fail-closed.

``object``         the object exists at the catalogued version; the store's SHA-256 checksum, the
                   size and the sha256 of the bytes read equal the catalog's. A record a primary
                   repair restored is read through the re-homed map: a refused map (or entry)
                   fails it ``object.rehomed_broken`` (:mod:`verification.rehomed`)
``unseal``         the envelope opens (authenticity, identity binding) and the PDF's sha256 equals
                   the catalog's
``signature``      offline PAdES B-LTA by one of the hospital's signers and TSAs; the catalogued
                   signer
``pdfa``           PDF/A-3b structure
``embedded-data``  the embedded FHIR Bundle's sha256 equals the catalog's ``data_sha256``
``conversion-mark`` a record converted from paper shows the mark on every page and in its XMP
``lock``           COMPLIANCE, retain-until not earlier than the catalog's, legal hold as expected
``evidence``       the record's RFC 4998 evidence record (locked) proves the PDF; pending within a
                   grace period (:mod:`verification.evidence_record`); full mode only

As of a date (``verify --at``, :mod:`verification.as_of`): the signature is judged at the moment
the evidence record proves, the lock must still run on that date.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from archive.core.errors import (
    DecompressionLimitError,
    EnvelopeFormatError,
    EnvelopeIntegrityError,
    KeyCommitmentError,
    ObjectNotFoundError,
    RehomedError,
    SealError,
    StoreUnavailableError,
    UnknownKeyError,
)
from archive.store import COMPLIANCE
from verification.document import (
    check_conversion_mark,
    check_embedded_data,
    check_pdfa,
    check_signature,
)
from verification.evidence import Evidence, NotReached
from verification.evidence_record import check_evidence_record
from verification.results import CheckResult

_SEAL_CODES: dict[type[Exception], str] = {
    EnvelopeIntegrityError: "unseal.integrity",
    KeyCommitmentError: "unseal.key_commitment",
    EnvelopeFormatError: "unseal.format",
    DecompressionLimitError: "unseal.too_large",
    UnknownKeyError: "unseal.unknown_key",
}


@dataclass(frozen=True, slots=True)
class RecordCheck:
    name: str
    run: Callable[[Evidence, datetime], CheckResult]


def _object(ev: Evidence, now: datetime) -> CheckResult:
    row = ev.row
    try:
        head = ev.head()
    except ObjectNotFoundError:
        return CheckResult.failed(
            "object",
            "object.missing",
            f"{row.object_key} version {row.version_id} does not exist in the bucket",
        )
    except RehomedError as e:
        return _rehomed_broken(e)
    if head.sha256 is None:
        return CheckResult.indeterminate(
            "object", "object.no_checksum", "the store keeps no SHA-256 checksum for the object"
        )
    if head.sha256 != row.sealed_sha256:
        return CheckResult.failed(
            "object",
            "object.checksum_mismatch",
            f"the store's SHA-256 checksum {head.sha256[:16]}... differs from the catalog's "
            f"{row.sealed_sha256[:16]}...",
        )
    if head.size != row.sealed_size:
        return CheckResult.failed(
            "object",
            "object.size_mismatch",
            f"the object is {head.size} bytes, the catalog records {row.sealed_size}",
        )
    return _sealed_bytes(ev)


def _sealed_bytes(ev: Evidence) -> CheckResult:
    """Read the bytes and hash them ourselves: the store's checksum is metadata written at upload;
    bit rot below the API leaves it unchanged."""
    row = ev.row
    try:
        digest = ev.sealed_sha256()
    except StoreUnavailableError:
        raise  # the verifier reports an unreachable store as indeterminate
    except RehomedError as e:
        return _rehomed_broken(e)
    except Exception as e:  # noqa: BLE001 - a version that exists but cannot be read is damaged
        return CheckResult.failed(
            "object",
            "object.unreadable",
            f"the store lists the object but reading it failed ({type(e).__name__})",
        )
    if digest != row.sealed_sha256:
        return CheckResult.failed(
            "object",
            "object.sealed_sha256_mismatch",
            f"the bytes read hash to {digest[:16]}..., the catalog records "
            f"{row.sealed_sha256[:16]}... (changed below the S3 API: bit rot or tampering)",
        )
    return CheckResult.passed("object", f"present at version {row.version_id}, bytes intact")


def _rehomed_broken(error: RehomedError) -> CheckResult:
    """The catalogued version is gone from the primary and the map naming its restored copy is
    refused: not served, so not verified (the message names keys and ids, no PHI)."""
    return CheckResult.failed(
        "object", "object.rehomed_broken", f"restored by a primary repair, not readable: {error}"
    )


def _unseal(ev: Evidence, now: datetime) -> CheckResult:
    try:
        same = ev.sealed_sha256() == ev.row.sealed_sha256
    except Exception as e:
        raise NotReached("the object could not be read (see the object check)") from e
    if not same:
        raise NotReached("the stored bytes differ from the catalog's (see the object check)")
    try:
        pdf = ev.unsealed()
    except (SealError, UnknownKeyError) as e:
        code = _SEAL_CODES.get(type(e), "unseal.failed")
        return CheckResult.failed("unseal", code, f"the sealed object does not open: {e}")
    digest = ev.once("pdf-hash", lambda: hashlib.sha256(pdf).hexdigest())  # pdf_matches' too
    if digest != ev.row.pdf_sha256:
        return CheckResult.failed(
            "unseal",
            "unseal.pdf_sha256_mismatch",
            f"the unsealed PDF hashes to {digest[:16]}..., the catalog records "
            f"{ev.row.pdf_sha256[:16]}...",
        )
    return CheckResult.passed(
        "unseal", "the envelope authenticated and the PDF is the catalogued one"
    )


def _signature(ev: Evidence, now: datetime) -> CheckResult:
    pdf = ev.pdf_matches()
    moment = now
    if ev.env.as_of is not None:
        # Decades ahead every certificate of the PDF has expired: it is judged at the moment
        # the evidence record proves it existed, if the record holds as of the date.
        with contextlib.suppress(Exception):  # the evidence check reports it; judged alone
            _evidence(ev, now)
        moment = ev.proven_at or now
    reader = ev.reader()
    result = ev.timed(
        "signature",
        lambda: check_signature(
            pdf,
            trust=ev.env.trust,
            now=moment,
            expected_signer_sha256=ev.row.signer_cert_sha256,
            reader=reader,
        ),
    )
    if moment is now:
        return result
    return dataclasses.replace(
        result, message=f"{result.message} (at {moment:%Y-%m-%d %H:%M}Z, proven by the evidence)"
    )


def _evidence(ev: Evidence, now: datetime) -> CheckResult:
    """Once per record: the signature check, as of a date, asks for it first."""
    return ev.once("evidence-check", lambda: check_evidence_record(ev, now))


def _pdfa(ev: Evidence, now: datetime) -> CheckResult:
    pdf = ev.pdf_matches()
    reader = ev.reader()
    return ev.timed("pdfa", lambda: check_pdfa(pdf, reader=reader))


def _embedded_data(ev: Evidence, now: datetime) -> CheckResult:
    pdf = ev.pdf_matches()
    reader = ev.reader()
    return ev.timed(
        "embedded-data",
        lambda: check_embedded_data(pdf, expected_sha256=ev.row.data_sha256, reader=reader),
    )


def _conversion_mark(ev: Evidence, now: datetime) -> CheckResult:
    pdf = ev.pdf_matches()
    reader = ev.reader()
    return ev.timed("conversion-mark", lambda: check_conversion_mark(pdf, reader=reader))


def _lock(ev: Evidence, now: datetime) -> CheckResult:
    row = ev.row
    try:
        lock = ev.head().lock
    except (ObjectNotFoundError, RehomedError) as e:
        raise NotReached("the object is missing (see the object check)") from e
    if lock.mode != COMPLIANCE:
        return CheckResult.failed(
            "lock", "lock.not_compliance", f"the object's lock mode is {lock.mode}, not COMPLIANCE"
        )
    if lock.retain_until is None or lock.retain_until < row.retain_until:
        found = f"{lock.retain_until:%Y-%m-%d}" if lock.retain_until else "none"
        return CheckResult.failed(
            "lock",
            "lock.retention_shortened",
            f"the store locks the object until {found}, earlier than the catalog's "
            f"{row.retain_until:%Y-%m-%d}",
        )
    # As of a date: the lock (COMPLIANCE, never shorter than the catalog's retention, checked
    # above) still runs then unless the catalogued retention itself ended before it.
    as_of = ev.env.as_of
    if as_of is not None and row.retain_until < as_of:
        return CheckResult.passed(
            "lock",
            f"retention ended {row.retain_until:%Y-%m-%d}, before {as_of:%Y-%m-%d}: the "
            "record may lawfully be destroyed by then",
            code="lock.retention_ended",
        )
    expected = ev.env.holds.expected_hold(row.encounter_id)
    if lock.legal_hold != expected:
        state = {True: "on", False: "off"}
        return CheckResult.failed(
            "lock",
            "lock.hold_mismatch",
            f"legal hold is {state[lock.legal_hold]} in the store, expected {state[expected]}",
        )
    return CheckResult.passed(
        "lock", f"COMPLIANCE until {lock.retain_until:%Y-%m-%d}, legal hold as expected"
    )


OBJECT = RecordCheck("object", _object)
UNSEAL = RecordCheck("unseal", _unseal)
SIGNATURE = RecordCheck("signature", _signature)
PDFA = RecordCheck("pdfa", _pdfa)
EMBEDDED_DATA = RecordCheck("embedded-data", _embedded_data)
CONVERSION_MARK = RecordCheck("conversion-mark", _conversion_mark)
LOCK = RecordCheck("lock", _lock)
EVIDENCE = RecordCheck("evidence", _evidence)

FULL: tuple[RecordCheck, ...] = (
    OBJECT,
    UNSEAL,
    SIGNATURE,
    PDFA,
    EMBEDDED_DATA,
    CONVERSION_MARK,
    LOCK,
    EVIDENCE,
)
# Fixity: present, unchanged, opens, hashes match; no signature or structure validation.
FIXITY: tuple[RecordCheck, ...] = (OBJECT, UNSEAL, EMBEDDED_DATA, LOCK)

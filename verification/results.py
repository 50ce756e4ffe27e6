"""What verification says: frozen results with a bottom line, a reason code and a sentence.

Fail closed is encoded here, once: a verdict over no results is an error, and only a non-empty
set of results that all *passed* passes. ``indeterminate`` (the check could not decide: the store
did not answer, a check raised, an earlier stage it depends on failed) is never a pass.

Messages name the check, the encounter id or pseudonym, keys, versions, hashes and times only:
results end up in logs, Prefect's database and reports an inspector reads, so no PHI.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from archive.core.errors import ArchiveError


class VerificationError(ArchiveError):
    """Verification could not be carried out as configured (no checks, no catalog, ...)."""


class Status(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    INDETERMINATE = "indeterminate"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check's verdict on one record (or on the archive as a whole)."""

    check: str  # e.g. "object", "signature", "catalog.chain"
    status: Status
    reason_code: str  # e.g. "object.sealed_sha256_mismatch", "sig.modified_after_signing"
    message: str  # one human sentence, no PHI
    details: tuple[str, ...] = ()  # the libraries' log while checking (verify-file --verbose)

    @classmethod
    def passed(cls, check: str, message: str, code: str | None = None) -> CheckResult:
        return cls(check, Status.PASSED, code or f"{check}.ok", message)

    @classmethod
    def failed(cls, check: str, code: str, message: str) -> CheckResult:
        return cls(check, Status.FAILED, code, message)

    @classmethod
    def indeterminate(cls, check: str, code: str, message: str) -> CheckResult:
        return cls(check, Status.INDETERMINATE, code, message)


def bottom_line(results: Iterable[CheckResult]) -> Status:
    """FAILED if any failed, else INDETERMINATE if any is, else PASSED; no results is an error."""
    return worst(r.status for r in results)


def worst(seen: Iterable[Status]) -> Status:
    """:func:`bottom_line` over statuses alone (a run's tally keeps no results)."""
    statuses = set(seen)
    if not statuses:
        raise VerificationError("no check produced a result: an empty verification never passes")
    if Status.FAILED in statuses:
        return Status.FAILED
    if Status.INDETERMINATE in statuses:
        return Status.INDETERMINATE
    return Status.PASSED


def primary(results: Iterable[CheckResult]) -> CheckResult:
    """The result that explains the bottom line: the first failure, else the first
    indeterminate, else the first pass."""
    ordered = list(results)
    status = bottom_line(ordered)
    return next(r for r in ordered if r.status is status)


@dataclass(frozen=True, slots=True)
class Renewal:
    """Why a record's newest document timestamp must be renewed (the renewal job's input)."""

    reason_code: str  # horizon.tsa_expiring, horizon.tsa_expired, horizon.weak_hash
    message: str
    tsa_cert_not_after: datetime | None
    hash_algorithm: str | None


@dataclass(frozen=True, slots=True)
class RecordResult:
    """Every check's result on one catalogued record, plus its renewal need."""

    encounter_id: str
    patient_pseudonym: str
    object_key: str
    version_id: str
    archive_day: str  # the stratum sampling uses (YYYY-MM-DD)
    checks: tuple[CheckResult, ...]
    renewal: Renewal | None
    seconds: float
    stage_seconds: tuple[tuple[str, float], ...] = ()

    @property
    def status(self) -> Status:
        return bottom_line(self.checks)

    @property
    def reason(self) -> CheckResult:
        return primary(self.checks)

    @property
    def problems(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.status is not Status.PASSED)

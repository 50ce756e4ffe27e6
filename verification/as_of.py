"""Verification "as of" a date: what the moment means, and how an evidence record is judged then.

``emr-archive verify --at DATE`` and ``verify-file --at DATE`` ask: on DATE, with only what the
archive holds and the trust roots, would this record still be proven? The answers, per check:

* **evidence**: the evidence record as it stood on DATE (renewals made later are ignored),
  every timestamp valid at the time of the next, the newest at DATE, no hash relied on after
  the weak-algorithm table dates it (:mod:`archive.evidence`);
* **signature**: checked at the moment the evidence record proves the PDF existed (its first
  timestamp): the signer's and the document timestamps' certificates have long expired by a
  date decades ahead, and RFC 4998's point is that this no longer matters once existence
  before their expiry is proven. Without a passing evidence record the PDF is judged alone at
  DATE (its own B-LTA chain), and fails once its newest document timestamp's TSA has lapsed;
* **lock**: COMPLIANCE retention must still run on DATE; a record whose catalogued retention
  ended before DATE passes with ``lock.retention_ended`` (by then it may be lawfully
  destroyed; what remains is still judged, so a kept record is shown provable or not);
* **renewal horizon**: counted from DATE.

Judging is pure; :func:`judge_evidence` keeps one token check per set of TSA roots for the
process, so a run's records share the pyHanko check of their common timestamp.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

from asn1crypto import x509

from archive.evidence import DataObject, EvidenceVerdict, TsaTrust, WeakAlgorithms
from archive.evidence import validate_evidence as _validate
from archive.sign import TrustPolicy
from verification.document import verify_document
from verification.results import CheckResult

__all__ = [
    "EVIDENCE",
    "document_as_of",
    "judge_evidence",
    "parse_moment",
    "verify_document_as_of",
]

EVIDENCE = "evidence"

_RELATIVE = re.compile(r"^\+(\d{1,4})([yd])$")


def parse_moment(text: str, *, now: datetime) -> datetime:
    """``YYYY-MM-DD`` (that day's end, UTC: "as of" a day includes all of it), an ISO 8601
    instant with its offset, or ``+Ny`` / ``+Nd`` (years, days from ``now``). ValueError
    otherwise: a naive instant is refused, its zone would be a guess."""
    text = text.strip()
    relative = _RELATIVE.match(text)
    if relative:
        n, unit = int(relative.group(1)), relative.group(2)
        return _years_after(now, n) if unit == "y" else now + timedelta(days=n)
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), time.max, tzinfo=UTC)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset (write 2056-01-01T00:00:00+00:00)")
    return moment.astimezone(UTC)


def _years_after(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February into a common year
        return moment.replace(year=moment.year + years, day=28)


_CHECKS: dict[tuple[bytes, ...], TsaTrust] = {}
_CHECKS_LOCK = threading.Lock()


def _trust(roots: Sequence[x509.Certificate]) -> TsaTrust:
    key = tuple(sorted(r.sha256 for r in roots))
    with _CHECKS_LOCK:
        if key not in _CHECKS:
            _CHECKS[key] = TsaTrust(roots)
        return _CHECKS[key]


def judge_evidence(
    der: bytes,
    obj: DataObject,
    *,
    as_of: datetime,
    tsa_roots: Sequence[x509.Certificate],
    weak: WeakAlgorithms,
) -> EvidenceVerdict:
    """The evidence record ``der`` judged for ``obj`` as of ``as_of`` under ``tsa_roots``."""
    return _validate(der, [obj], as_of=as_of, check_timestamp=_trust(tsa_roots), weak=weak)


def verify_document_as_of(
    pdf: bytes,
    *,
    trust: TrustPolicy,
    as_of: datetime,
    evidence: bytes | None,
    weak: WeakAlgorithms,
) -> tuple[CheckResult, ...]:
    """``verify-file --at``: the evidence record (when given) judged for ``pdf`` as of
    ``as_of``, then the document's checks at the moment it proves, else at ``as_of`` alone."""
    return document_as_of(pdf, trust=trust, as_of=as_of, evidence=evidence, weak=weak)[0]


def document_as_of(
    pdf: bytes,
    *,
    trust: TrustPolicy,
    as_of: datetime,
    evidence: bytes | None,
    weak: WeakAlgorithms,
) -> tuple[tuple[CheckResult, ...], datetime | None]:
    """:func:`verify_document_as_of`'s results, and the moment a passing evidence record proves
    the PDF existed (None without one): what the renewal horizon says of a lapsed timestamp."""
    if evidence is None:
        return verify_document(pdf, trust=trust, now=as_of), None
    verdict = judge_evidence(
        evidence, DataObject(data=pdf), as_of=as_of, tsa_roots=trust.tsa_roots, weak=weak
    )
    if verdict.code is not None:
        found = CheckResult.failed(EVIDENCE, verdict.code, verdict.detail)
        return (*verify_document(pdf, trust=trust, now=as_of), found), None
    proven = verdict.proven_at or as_of
    found = CheckResult.passed(
        EVIDENCE,
        f"the evidence record proves the PDF existed at {proven:%Y-%m-%d %H:%M}Z and still "
        f"holds as of {as_of:%Y-%m-%d}",
    )
    return (*verify_document(pdf, trust=trust, now=proven), found), proven

"""The ``evidence`` check: the record's RFC 4998 evidence record exists, is locked at least as
long as the record (the later of the catalog row's date and the record's own lock, which an
upgrade lengthens), and proves the stored PDF under the TSA trust roots now (or as of the
date ``verify --at`` asks about: :mod:`verification.as_of`), no hash relied on after the
``weak_algorithms`` setting dates it.

The evidence record is read from the bucket (the locked copies: the initial record and every
renewal, :func:`archive.pipeline.evidence_current.current_evidence`), never from the local cache
the nightly run keeps. Its key derives from the catalog row (:func:`archive.store.evidence_key`).
A record without one is *pending* while it is younger than ``evidence_grace_days`` (a TSA outage:
the next nightly run completes it, and the run summary counts it as ``evidence_pending``) and
``evidence.missing`` after that: by then some run should have completed it, so something is
wrong (no run since, or the stage fails every night) and a records officer must know.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from archive.core.errors import EvidenceFormatError, SealError
from archive.evidence import DataObject
from archive.pipeline.evidence_current import current_evidence
from archive.store import SealedStore, evidence_key
from verification.as_of import judge_evidence
from verification.evidence import Evidence
from verification.results import CheckResult

CHECK = "evidence"


def check_evidence_record(ev: Evidence, now: datetime) -> CheckResult:
    pdf = ev.pdf_matches()  # the stored PDF is the catalogued one, so its digest is the row's
    row = ev.row
    key = evidence_key(object_key=row.object_key, version_id=row.version_id)
    store = SealedStore(ev.env.store, keys=ev.env.keys, settings=ev.env.seal)
    try:  # the initial record with every renewal appended, and the objects it was built from
        current = ev.timed(
            CHECK,
            lambda: current_evidence(
                store,
                object_key=row.object_key,
                version_id=row.version_id,
                renewals=ev.env.renewals,
            ),
        )
    except (SealError, EvidenceFormatError) as e:
        return CheckResult.failed(
            CHECK, "evidence.malformed", f"the evidence record does not open ({type(e).__name__})"
        )
    if current is None:
        age = now - row.signed_at
        grace = timedelta(days=ev.env.settings.evidence_grace_days)
        if age <= grace:
            return CheckResult.passed(
                CHECK,
                f"evidence pending: signed {age.days} day(s) ago, within the "
                f"{grace.days}-day grace; the next nightly run timestamps it",
                code="evidence.pending",
            )
        return CheckResult.failed(
            CHECK,
            "evidence.missing",
            f"no evidence record at {key} {age.days} days after signing "
            f"(grace {grace.days} days): check the nightly runs' evidence_pending",
        )
    # The record's effective retain-until: an upgrade lengthens the record's lock, not the
    # catalog row (locked, never rewritten), and its proof must last as long (the HEAD is the
    # one the lock check made).
    held = ev.head().lock.retain_until
    until = row.retain_until if held is None else max(row.retain_until, held)
    unlocked = current.locked_until(until)
    if unlocked is not None:
        return CheckResult.failed(
            CHECK,
            "evidence.lock",
            f"the evidence record's part {unlocked.key} is not COMPLIANCE-locked as long as "
            f"the record (until {until:%Y-%m-%d})",
        )
    der = current.der
    verdict = ev.timed(
        CHECK,
        lambda: judge_evidence(
            der,
            # the bytes too: a chain from a hash-tree renewal needs the PDF in its own hash
            DataObject(data=pdf, digests={"sha256": bytes.fromhex(row.pdf_sha256)}),
            as_of=now,
            tsa_roots=ev.env.trust.tsa_roots,
            weak=ev.env.weak,
        ),
    )
    if verdict.code is not None:
        return CheckResult.failed(CHECK, verdict.code, verdict.detail)
    ev.proven_at = verdict.proven_at  # the signature check, as of a date, stands on it
    return CheckResult.passed(
        CHECK, f"evidence record proves the PDF existed at {verdict.proven_at:%Y-%m-%d %H:%M}Z"
    )

"""The renewal horizon's judgement of a document's newest timestamp: weak hashes by the dated
table (the one the evidence renewal plans by) as of the verification date, and a TSA
certificate that has already expired said to be expired, with whether an evidence record
covers it, rather than "expiring"."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from archive.core.sections import EvidenceSettings
from archive.evidence import WeakAlgorithms
from archive.sign import NewestTimestamp
from verification.document import judge_horizon
from verification.settings import VerificationSettings, VerifySettings, weak_table

NOW = datetime(2026, 12, 1, tzinfo=UTC)
TABLE = WeakAlgorithms(EvidenceSettings().weak_since())  # md5 2004, sha1 2012, sha224 2029


def _newest(not_after: datetime, algorithm: str = "sha256") -> NewestTimestamp:
    return NewestTimestamp(
        "DocTs1", datetime(2026, 1, 1, tzinfo=UTC), "ab" * 32, not_after, algorithm
    )


def _judge(
    newest: NewestTimestamp,
    *,
    at: datetime = NOW,
    days: int = 730,
    weak: WeakAlgorithms = TABLE,
    proven_at: datetime | None = None,
) -> tuple[str, str] | None:
    r = judge_horizon(newest, now=at, horizon_days=days, weak=weak, proven_at=proven_at)
    return None if r is None else (r.reason_code, r.message)


FAR = datetime(2040, 1, 1, tzinfo=UTC)


def test_a_hash_is_weak_by_the_dated_table_as_of_the_verification_date() -> None:
    # sha1 was weak long before now; sha224 only from 2029: outside a 1-year horizon today,
    # inside a 5-year one, and weak already as of a date after 2029 (--at).
    code, message = _judge(_newest(FAR, "sha1")) or ("", "")
    assert code == "horizon.weak_hash"
    assert "weak since 2012-08-01" in message
    assert _judge(_newest(FAR, "sha224"), days=365) is None
    code, message = _judge(_newest(FAR, "sha224"), days=5 * 365) or ("", "")
    assert code == "horizon.weak_hash"
    assert "weak from 2029-01-01, within 1825 days" in message
    code, message = _judge(_newest(FAR, "sha224"), at=datetime(2030, 1, 1, tzinfo=UTC)) or ("", "")
    assert code == "horizon.weak_hash"
    assert "weak since 2029-01-01" in message
    # Before the table dates it, sha1 was not weak: a verification as of 2010 does not say so.
    assert _judge(_newest(FAR, "sha1"), at=datetime(2010, 1, 1, tzinfo=UTC), days=30) is None
    assert _judge(_newest(FAR, "sha256")) is None


def test_the_horizon_reads_the_table_the_evidence_renewal_plans_by() -> None:
    # The one table: [evidence] weak_algorithms; verification has no list of its own any more.
    settings = VerifySettings(evidence=EvidenceSettings(weak_algorithms=("sha256@2027-06-01",)))
    weak = weak_table(settings)
    assert _judge(_newest(FAR), weak=weak, days=365) == (
        "horizon.weak_hash",
        "the newest document timestamp uses sha256, weak from 2027-06-01, within 365 days "
        "(the dated table)",
    )
    assert _judge(_newest(FAR), weak=weak, days=30) is None
    assert "weak_hash_algorithms" not in VerificationSettings.model_fields
    with pytest.raises(ValueError, match="weak_hash_algorithms"):
        VerificationSettings.model_validate({"weak_hash_algorithms": ["sha1"]})


def test_a_tsa_certificate_that_expired_long_before_the_date_is_expired_not_expiring() -> None:
    expired = _newest(datetime(2030, 6, 1, tzinfo=UTC))
    at = datetime(2056, 12, 1, tzinfo=UTC)  # verify-file --at +30y
    code, message = _judge(expired, at=at) or ("", "")
    assert code == "horizon.tsa_expired"
    assert "expired on 2030-06-01, before 2056-12-01" in message
    assert "expires" not in message
    assert "within" not in message
    assert "no evidence record proves the PDF existed before then" in message


def test_an_expired_tsa_certificate_says_whether_the_evidence_record_covers_it() -> None:
    expired, at = _newest(datetime(2030, 6, 1, tzinfo=UTC)), datetime(2056, 12, 1, tzinfo=UTC)
    covered = _judge(expired, at=at, proven_at=datetime(2026, 1, 1, tzinfo=UTC))
    assert covered is not None
    assert covered[0] == "horizon.tsa_expired"
    assert "covered by its evidence record" in covered[1]
    assert "2026-01-01" in covered[1]
    late = _judge(expired, at=at, proven_at=datetime(2031, 1, 1, tzinfo=UTC))
    assert late is not None
    assert "not covered" in late[1]
    assert "2031-01-01" in late[1]


def test_a_certificate_ending_within_the_horizon_is_expiring_and_one_beyond_it_is_fine() -> None:
    soon = _newest(datetime(2027, 6, 1, tzinfo=UTC))
    assert _judge(soon) == (
        "horizon.tsa_expiring",
        "the newest document timestamp's TSA certificate expires on 2027-06-01, within 730 days",
    )
    assert _judge(soon, days=30) is None
    at_now = _judge(_newest(NOW))  # ending at the very moment: already expired
    assert at_now is not None
    assert at_now[0] == "horizon.tsa_expired"

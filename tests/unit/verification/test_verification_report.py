"""The report and the log: everything escaped, one row per record, a fail-closed verdict."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from verification.inventory import Finding
from verification.log import read_log, write_log
from verification.report import Summary, render_html, write_reports
from verification.results import CheckResult, RecordResult, Status, VerificationError
from verification.tally import Tally

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def _record(encounter: str, *checks: CheckResult) -> RecordResult:
    return RecordResult(
        encounter_id=encounter,
        patient_pseudonym="ab" * 32,
        object_key="records/v1/x/ab/r1",
        version_id="v1",
        archive_day="2026-11-22",
        checks=checks,
        renewal=None,
        seconds=0.1,
    )


def _summary(*results: RecordResult, archive: tuple[CheckResult, ...] | None = None) -> Summary:
    chain = CheckResult.passed("catalog.chain", "1 manifest(s) chain intact")
    return Summary(
        run_id="verify-test",
        mode="every catalogued record",
        checks="full",
        started_at=NOW,
        duration_s=1.0,
        archive_checks=archive if archive is not None else (chain,),
        findings=(Finding("inventory.orphan", "records/v1/<b>", "1", "an object"),),
        tally=Tally.of(results),
        selected=len(results),
    )


def test_everything_in_the_html_is_escaped() -> None:
    evil = CheckResult.failed("pdfa", "pdfa.fonts", "font <script>alert(1)</script> & co")
    text = render_html(_summary(_record("enc-<1>", evil)))
    assert "<script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in text
    assert "enc-&lt;1&gt;" in text
    assert "records/v1/&lt;b&gt;" in text


def test_the_verdict_fails_closed() -> None:
    ok = CheckResult.passed("object", "fine")
    unsure = CheckResult.indeterminate("lock", "lock.store_unavailable", "no answer")
    assert _summary(_record("a", ok)).status is Status.PASSED
    assert _summary(_record("a", ok), _record("b", ok, unsure)).status is Status.INDETERMINATE
    broken = CheckResult.failed("catalog.chain", "catalog.chain_broken", "gap")
    assert _summary(archive=(broken,)).status is Status.FAILED
    with pytest.raises(VerificationError):
        _ = _summary(archive=()).status  # nothing checked at all is an error, never a pass


def test_log_and_reports_are_written_with_one_row_per_record(tmp_path: Path) -> None:
    bad = CheckResult.failed("lock", "lock.hold_mismatch", "legal hold is on")
    results = (_record("a", CheckResult.passed("lock", "ok")), _record("b", bad))
    log = write_log(tmp_path, results, run_id="verify-test", mode="full", verified_at=NOW)
    summary = write_reports(tmp_path, _summary(*results), log_path=log)
    rows = read_log(tmp_path).to_pylist()
    assert [(r["encounter_id"], r["status"], r["reason_code"]) for r in rows] == [
        ("a", "passed", "lock.ok"),
        ("b", "failed", "lock.hold_mismatch"),
    ]
    assert summary.report_path is not None
    assert "lock.hold_mismatch" in summary.report_path.read_text(encoding="utf-8")
    assert (tmp_path / "runs" / "verify-test.json").is_file()
    assert not list(tmp_path.rglob("*.tmp"))
    assert log.stat().st_mode & 0o777 == 0o600  # rows name encounters and pseudonyms
    assert summary.reasons() == {"inventory.orphan": 1, "lock.hold_mismatch": 1}


def test_the_renewal_work_list_names_the_job_that_renews() -> None:
    from dataclasses import replace

    from verification.results import Renewal

    due = Renewal("horizon.tsa_expiring", "ends 2027-01-01", NOW, "sha256")
    summary = _summary(replace(_record("a", CheckResult.passed("lock", "ok")), renewal=due))
    assert "emr-archive evidence renew" in render_html(summary)
    assert "emr-archive evidence renew --plan" in summary.to_markdown()
    quiet = _summary(_record("a", CheckResult.passed("lock", "ok")))
    assert "evidence renew" not in quiet.to_markdown()

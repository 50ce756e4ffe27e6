"""A run keeps counts, not records: every row goes to the log as it comes, the report lists the
first failures, and nothing is published for a run that did not end."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from archive.core.settings import Settings
from archive.seal import LocalKeyring
from tests.support.memstore import MemoryStore
from verification.config import HoldSet, VerificationSettings
from verification.log import LogWriter, read_log, write_log
from verification.results import CheckResult, RecordResult, Renewal, Status, VerificationError
from verification.run import RunPlan, VerificationRun
from verification.select import Mode, Selection
from verification.tally import MAX_DETAIL, Tally

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
OK = CheckResult.passed("object", "fine")
BAD = CheckResult.failed("object", "object.sha256_mismatch", "bytes changed")
DUE = Renewal("horizon.tsa_expiring", "ends soon", NOW, "sha256")


def _record(i: int, *checks: CheckResult, renewal: Renewal | None = None) -> RecordResult:
    return RecordResult(
        encounter_id=f"enc-{i:06d}",
        patient_pseudonym="ab" * 32,
        object_key=f"records/v1/x/{i:06d}",
        version_id="v1",
        archive_day="2026-11-22",
        checks=checks or (OK,),
        renewal=renewal,
        seconds=0.01,
        stage_seconds=(("object", 0.01),),
    )


def _run(tmp_path: Path, *, keep: bool = False) -> VerificationRun:
    settings = Settings(data_dir=tmp_path / "data")
    LocalKeyring.create(settings.keyring_dir, kek_id=settings.keys.kek_id)  # the audit event's
    vsettings = VerificationSettings(output_dir=tmp_path / "verification", workers=1)
    plan = RunPlan.create(settings, vsettings, selection=Selection(mode=Mode.FULL), now=NOW)
    return VerificationRun(
        settings=settings,
        vsettings=vsettings,
        plan=plan,
        holds=HoldSet(),
        archive_checks=[CheckResult.passed("catalog.chain", "intact")],
        findings=(),
        source=tuple,
        selected=0,
        audit_store=MemoryStore(),
        keep_results=keep,
    )


def test_a_run_keeps_a_bounded_tally_and_logs_every_record(tmp_path: Path) -> None:
    many = MAX_DETAIL * 3
    results = [_record(i, *(() if i % 2 else (BAD,)), renewal=DUE) for i in range(many)]
    with _run(tmp_path) as run:
        for start in range(0, many, 500):
            run.absorb(results[start : start + 500])
        assert not list((tmp_path / "verification" / "log").glob("*.parquet"))  # not yet
        summary = run.finish()
    # Held: at most MAX_DETAIL failures and renewals, whatever the run's size.
    assert len(summary.tally.failed) == len(summary.tally.renewals) == MAX_DETAIL
    with pytest.raises(VerificationError, match="kept no results"):
        _ = summary.results
    assert summary.counts() == {"passed": many // 2, "failed": many // 2, "indeterminate": 0}
    assert summary.reasons() == {"object.sha256_mismatch": many // 2}
    assert summary.status is Status.FAILED
    assert summary.renewal_due == many
    # Logged: every record, in order.
    rows = read_log(tmp_path / "verification").to_pylist()
    assert [r["encounter_id"] for r in rows] == [r.encounter_id for r in results]
    report = summary.report_path.read_text(encoding="utf-8") if summary.report_path else ""
    assert f"Records that did not pass ({many // 2})" in report
    assert report.count("<h3>") == MAX_DETAIL
    assert f"Timestamp renewal due ({many})" in report
    data = json.loads((tmp_path / "verification" / "runs" / f"{run.plan.run_id}.json").read_text())
    assert (data["verified"], data["renewal_due"]) == (many, many)


def test_a_run_kept_results_only_when_asked(tmp_path: Path) -> None:
    results = [_record(1), _record(2, BAD)]
    with _run(tmp_path, keep=True) as run:
        run.absorb(results)
        assert run.finish().results == tuple(results)


def test_a_run_that_does_not_finish_publishes_no_log(tmp_path: Path) -> None:
    with _run(tmp_path) as run:
        run.absorb([_record(1)])
    log = tmp_path / "verification" / "log"
    assert not list(log.iterdir())  # neither the log nor its temporary file


def test_the_streamed_log_is_the_whole_log_written_at_once(tmp_path: Path) -> None:
    results = [
        _record(i, *(() if i % 3 else (BAD,)), renewal=DUE if i % 5 else None) for i in range(9000)
    ]
    whole = write_log(tmp_path / "a", results, run_id="r", mode="full", verified_at=NOW)
    streamed = LogWriter(tmp_path / "b", run_id="r", mode="full", verified_at=NOW)
    for start in range(0, len(results), 777):
        streamed.add(results[start : start + 777])
    path = streamed.close()
    assert read_log(tmp_path / "a").equals(read_log(tmp_path / "b"))
    assert path.stat().st_mode & 0o777 == whole.stat().st_mode & 0o777 == 0o600
    assert not list(tmp_path.rglob("*.tmp"))


def test_the_tally_reports_what_the_whole_list_did() -> None:
    results = [
        _record(i, *(() if i % 4 else (BAD,)), renewal=DUE if i % 7 else None) for i in range(50)
    ]
    tally = Tally.of(results)
    assert tally.failed == [r for r in results if r.status is not Status.PASSED]
    assert tally.renewals == [r for r in results if r.renewal is not None]
    assert dataclasses.asdict(tally)["verified"] == 50

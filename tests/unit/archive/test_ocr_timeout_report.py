"""A scan archived with pages Tesseract ran out of time on is counted in every place a run reports
to (summary, its markdown, the audit event) and named in the run's private notes, one line per
record: "archived without text layer on N pages: OCR timeout". The conversion's own count is
test_convert's; the whole intake run's, the paper-intake integration test's."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

from archive.pipeline.ledger import Ledger
from archive.pipeline.summary import RunSummary, run_event, write_report
from archive.pipeline.worker import RecordOutcome
from tests.support.catalog import make_row


def _ledger() -> Ledger:
    ledger = Ledger(RunSummary("run-1", "2026-12-01", "2026-12-02"))
    ledger.record(RecordOutcome("paper-1", "archived", make_row(1, "run-1"), ocr_timeout_pages=3))
    ledger.record(RecordOutcome("paper-2", "adopted", make_row(2, "run-1"), ocr_timeout_pages=1))
    ledger.record(RecordOutcome("paper-3", "archived", make_row(3, "run-1")))
    return ledger


def test_pages_without_text_layer_are_counted_and_noted_per_record() -> None:
    ledger = _ledger()
    s = ledger.summary
    assert (s.archived, s.adopted) == (2, 1)
    assert (s.ocr_timeout_pages, s.ocr_timeout_records) == (4, 2)
    assert ledger.notes == [
        {"encounter_id": "paper-1", "note": "archived without text layer on 3 pages: OCR timeout"},
        {"encounter_id": "paper-2", "note": "archived without text layer on 1 page: OCR timeout"},
    ]
    assert "2 record(s) archived without text layer on 4 pages: OCR timeout" in s.to_markdown()
    assert s.to_dict()["ocr_timeout_pages"] == 4
    detail = run_event(s, recorded=datetime.now(UTC)).detail
    assert (detail["ocr_timeout_pages"], detail["ocr_timeout_records"]) == (4, 2)


def test_the_notes_are_written_beside_the_report_private_and_only_when_there_are_some(
    tmp_path: Path,
) -> None:
    ledger = _ledger()
    report = write_report(tmp_path, ledger.summary, ledger.failures, ledger.notes)
    notes = tmp_path / "run-1.notes.jsonl"
    lines = [json.loads(line) for line in notes.read_text(encoding="utf-8").splitlines()]
    assert [n["encounter_id"] for n in lines] == ["paper-1", "paper-2"]
    assert stat.S_IMODE(notes.stat().st_mode) == 0o600
    assert json.loads(report.read_text())["ocr_timeout_records"] == 2
    # Outside the private notes, counts only: no record's id.
    assert "paper-" not in report.read_text() + ledger.summary.to_markdown()
    clean = RunSummary("run-2", "2026-12-01", "2026-12-02")
    write_report(tmp_path, clean, [], [])
    assert not (tmp_path / "run-2.notes.jsonl").exists()
    assert "text layer" not in clean.to_markdown()

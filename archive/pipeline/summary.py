"""What a run tells people afterwards: counts for Prefect and the CLI, a report on disk, one audit
event.

Everything here leaves the process (Prefect's database, a markdown artifact, the audit log), so it
holds counts, bytes and reason codes only, never an id, a name or a code of a patient. The one
exception stays local and private: the list of failed encounters, written beside the report so an
operator knows what the next run will retry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from archive.audit import AuditEvent
from archive.core.atomic import write_private


@dataclass
class RunSummary:
    """What happened, in counts and bytes; no PHI (no ids, names or codes)."""

    run_id: str
    window_start: str
    window_end: str
    collected: int = 0
    archived: int = 0
    adopted: int = 0
    already_archived: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)  # every entry found, by reason
    quarantine_new: int = 0  # of those, entries no earlier run had stored
    amended: int = 0  # archived before with other data: sent again as a new version
    other_facility: int = 0  # a facility's run: encounters of others, left to their runs
    failed: dict[str, int] = field(default_factory=dict)
    pdf_bytes: int = 0
    sealed_bytes: int = 0
    duration_s: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    manifest: str | None = None
    evidence_written: int = 0  # RFC 4998 evidence records stored by this run
    evidence_pending: int = 0  # documents still without one (TSA down): the next run completes
    evidence_timestamps: int = 0  # TSA requests for evidence (one per run when it succeeds)
    # Paper intake: pages archived without a text layer because Tesseract ran out of time
    # (``[intake] ocr_timeout_s``), and the records they belong to (listed in the run's notes).
    ocr_timeout_pages: int = 0
    ocr_timeout_records: int = 0
    # Cluster runs: batches each worker returned (Dask worker addresses; empty for the pool).
    batches_by_worker: dict[str, int] = field(default_factory=dict)

    @property
    def failed_total(self) -> int:
        return sum(self.failed.values())

    @property
    def failure_message(self) -> str | None:
        """Why the run did not fully succeed, for its Failed state; None when nothing failed."""
        if not self.failed_total:
            return None
        # The reason codes, most frequent first: "token removed" must show in the Failed state.
        reasons = sorted(self.failed.items(), key=lambda kv: (-kv[1], kv[0]))
        return (
            f"{self.failed_total} record(s) failed "
            f"({', '.join(f'{code}: {n}' for code, n in reasons)}): the next run retries them "
            "(see the run's failures)"
        )

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())

    @property
    def ocr_timeout_caveat(self) -> str:
        """The run's OCR-timeout caveat in words (counts only), "" when there is none."""
        if not self.ocr_timeout_records:
            return ""
        return (
            f"{ocr_timeout_note(self.ocr_timeout_pages)} in all (archived and signed, but those "
            "pages are not searchable), listed by record in the run's notes"
        )

    @property
    def throughput(self) -> float:
        done = self.archived + self.adopted
        return done / self.duration_s if self.duration_s else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            failed_total=self.failed_total,
            quarantined_total=self.quarantined_total,
            throughput_per_s=round(self.throughput, 2),
        )
        return data

    def to_markdown(self) -> str:
        lines = [
            f"# Nightly archive run `{self.run_id}`",
            "",
            f"Window: {self.window_start} → {self.window_end}",
            "",
            "| outcome | records |",
            "|---|---:|",
            f"| archived (new) | {self.archived} |",
            f"| adopted (stored by an interrupted run) | {self.adopted} |",
            f"| already archived (skipped) | {self.already_archived} |",
            f"| amended since archived (new version) | {self.amended} |",
            f"| of another facility (left to its run) | {self.other_facility} |",
            f"| quarantined (still unresolved) | {self.quarantined_total} |",
            f"| of which new in this run | {self.quarantine_new} |",
            f"| failed (left for the next run) | {self.failed_total} |",
            f"| evidence records written | {self.evidence_written} |",
            f"| evidence pending (completed by the next run) | {self.evidence_pending} |",
            "",
            f"Bytes: {self.pdf_bytes:,} signed PDF, {self.sealed_bytes:,} sealed. "
            f"Duration {self.duration_s:.1f} s, {self.throughput:.1f} records/s.",
        ]
        if self.ocr_timeout_records:
            lines += ["", f"{self.ocr_timeout_records} record(s) {self.ocr_timeout_caveat}."]
        for title, counts in (
            ("Quarantine reasons", self.quarantined),
            ("Failure reasons", self.failed),
        ):
            if counts:
                lines += ["", f"## {title}", "", "| reason | count |", "|---|---:|"]
                lines += [f"| {reason} | {n} |" for reason, n in sorted(counts.items())]
        if self.stage_seconds:
            lines += [
                "",
                "## Time by stage (seconds, summed over workers)",
                "",
                "| stage | s |",
                "|---|---:|",
            ]
            lines += [f"| {k} | {v:.2f} |" for k, v in sorted(self.stage_seconds.items())]
        return "\n".join(lines) + "\n"


def ocr_timeout_note(pages: int) -> str:
    return f"archived without text layer on {pages} page{'s' if pages != 1 else ''}: OCR timeout"


def write_report(
    directory: Path,
    summary: RunSummary,
    failures: Sequence[Mapping[str, object]],
    notes: Sequence[Mapping[str, object]] = (),
) -> Path:
    """``<run id>.json`` (the summary); when records failed, ``<run id>.failures.jsonl``; when
    records were archived with a caveat (a scan's pages without text layer), ``.notes.jsonl``."""
    report = directory / f"{summary.run_id}.json"
    report.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(report, json.dumps(summary.to_dict(), indent=2, sort_keys=True))
    # Which records to look at (and rerun, or convert again): local and private like the catalog
    # (the summary, Prefect and the logs only ever see counts).
    for suffix, entries in (("failures", failures), ("notes", notes)):
        if entries:
            lines = "".join(json.dumps(e, sort_keys=True) + "\n" for e in entries)
            write_private(report.with_name(f"{summary.run_id}.{suffix}.jsonl"), lines)
    return report


def run_event(summary: RunSummary, *, recorded: datetime) -> AuditEvent:
    """One audit event per run: counts only (the catalog manifest names the records)."""
    s = summary
    entities = (("run", s.run_id),) + ((("manifest", s.manifest),) if s.manifest else ())
    counts = {
        "archived": s.archived,
        "adopted": s.adopted,
        "failed": s.failed_total,
        "quarantined": s.quarantined_total,
        "evidence_written": s.evidence_written,
        "evidence_pending": s.evidence_pending,
        "ocr_timeout_pages": s.ocr_timeout_pages,
        "ocr_timeout_records": s.ocr_timeout_records,
    }
    return AuditEvent(
        actor="nightly-archive",
        role="system",
        action="archive.run",
        recorded=recorded,
        outcome="failure" if s.failed_total else "success",
        entities=entities,
        detail={**counts, "window_start": s.window_start},
    )

"""What a run tells people: a summary (JSON, Prefect markdown) and an HTML report for inspectors.

The report names records by encounter id and patient pseudonym only, and every value is
HTML-escaped (reason messages quote what files and stores said). Files are written atomically
under ``<verification dir>/reports/`` and ``runs/``.
"""

from __future__ import annotations

import dataclasses
import html
import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from archive.core.atomic import write_private
from verification.inventory import Finding
from verification.results import CheckResult, RecordResult, Status, VerificationError, worst
from verification.tally import Tally

# The work list's owner: the evidence records carry each record's proof past its document
# timestamps, and the monthly job renews them (README, Preservation).
RENEWAL_JOB = (
    "Renewed by the monthly evidence-renewal deployment (`emr-archive evidence renew`); "
    "`emr-archive evidence renew --plan` says what is due and when."
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Summary:
    run_id: str
    mode: str
    checks: str
    started_at: datetime
    duration_s: float
    archive_checks: tuple[CheckResult, ...]
    findings: tuple[Finding, ...]
    tally: Tally  # the records' counts; each record's row is in the log
    selected: int
    report_path: Path | None = None
    log_path: Path | None = None
    as_of: datetime | None = None  # ``verify --at``: the date judged as of (also in ``mode``)
    kept: tuple[RecordResult, ...] | None = None  # every record's result, if the run kept them

    @classmethod
    def create(cls, **fields: Any) -> Summary:
        return cls(**fields)

    @property
    def status(self) -> Status:
        """Fail closed over everything: archive-wide checks and every record's bottom line."""
        return worst([*(c.status for c in self.archive_checks), *self.tally.bottom_lines()])

    @property
    def results(self) -> tuple[RecordResult, ...]:
        """Every record's result, for runs started with ``keep_results`` (tests, small runs);
        a run over the archive keeps only its :class:`Tally` and writes the rest to the log."""
        if self.kept is None:
            raise VerificationError("this run kept no results: read its log (verification.log)")
        return self.kept

    @property
    def verified(self) -> int:
        return self.tally.verified

    @property
    def failure_message(self) -> str | None:
        """Why the run is not a pass, for its Failed state; None when everything passed."""
        if self.status is Status.PASSED:
            return None
        bad = sum(n for status, n in self.counts().items() if status != Status.PASSED.value)
        return f"verification {self.status.value}: {bad} record(s) not passed"  # or archive-wide

    def counts(self) -> dict[str, int]:
        return {s.value: self.tally.statuses.get(s.value, 0) for s in Status}

    def reasons(self) -> dict[str, int]:
        """Records (and archive-wide findings) by the reason code that explains them."""
        reasons = Counter(self.tally.reasons)
        reasons.update(c.reason_code for c in self.archive_checks if c.status is not Status.PASSED)
        reasons.update(f.reason_code for f in self.findings)
        return dict(sorted(reasons.items()))

    def stage_seconds(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in sorted(self.tally.stages.items())}

    @property
    def renewal_due(self) -> int:
        return self.tally.renewal_due

    @property
    def throughput(self) -> float:
        return self.verified / self.duration_s if self.duration_s else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status.value,
            "mode": self.mode,
            "checks": self.checks,
            "started_at": self.started_at.isoformat(),
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "duration_s": round(self.duration_s, 3),
            "selected": self.selected,
            "verified": self.verified,
            "records": self.counts(),
            "reasons": self.reasons(),
            "archive_checks": [dataclasses.asdict(c) for c in self.archive_checks],
            "findings": [dataclasses.asdict(f) for f in self.findings],
            "renewal_due": self.renewal_due,
            "records_per_s": round(self.throughput, 2),
            "stage_seconds": self.stage_seconds(),
            "report": str(self.report_path) if self.report_path else None,
            "log": str(self.log_path) if self.log_path else None,
        }

    def to_markdown(self) -> str:
        c = self.counts()
        lines = [
            f"# Verification `{self.run_id}`: **{self.status.value.upper()}**",
            "",
            f"{self.mode}; checks: {self.checks}. {self.verified} record(s) verified in "
            f"{self.duration_s:.1f} s ({self.throughput:.1f}/s).",
            "",
            "| records | count |",
            "|---|---:|",
            *(f"| {k} | {v} |" for k, v in c.items()),
            f"| renewal due | {self.renewal_due} |",
            "",
            *([RENEWAL_JOB, ""] if self.renewal_due else []),
            "| archive-wide check | status | reason |",
            "|---|---|---|",
            *(f"| {a.check} | {a.status.value} | `{a.reason_code}` |" for a in self.archive_checks),
        ]
        if self.reasons():
            lines += ["", "| reason | count |", "|---|---:|"]
            lines += [f"| `{k}` | {v} |" for k, v in self.reasons().items()]
        if self.report_path:
            lines += ["", f"Report: `{self.report_path}`"]
        return "\n".join(lines) + "\n"


def write_reports(directory: Path, summary: Summary, *, log_path: Path) -> Summary:
    report = directory / "reports" / f"{summary.run_id}.html"
    summary = dataclasses.replace(summary, report_path=report, log_path=log_path)
    _write_private_file(report, render_html(summary))
    data = json.dumps(summary.to_dict(), indent=2, sort_keys=True, default=str)
    _write_private_file(directory / "runs" / f"{summary.run_id}.json", data)
    return summary


def render_html(s: Summary) -> str:
    e = html.escape
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Verification {e(s.run_id)}</title>{_STYLE}</head><body>",
        f"<h1>Archive verification {e(s.run_id)}: <span class='{e(s.status.value)}'>"
        f"{e(s.status.value.upper())}</span></h1>",
        f"<p>{e(s.mode)}; checks: {e(s.checks)}; started {e(s.started_at.isoformat())}; "
        f"{s.verified} record(s) in {s.duration_s:.1f} s.</p>",
        "<h2>Summary</h2>",
        _table(["records", "count"], list(s.counts().items())),
        "<h2>Archive-wide checks</h2>",
        _table(
            ["check", "status", "reason", "message"],
            [(c.check, c.status.value, c.reason_code, c.message) for c in s.archive_checks],
        ),
    ]
    if s.reasons():
        parts += ["<h2>Failures by reason</h2>", _table(["reason", "count"], s.reasons().items())]
    if s.findings:
        found = [(f.reason_code, f.object_key, f.version_id, f.message) for f in s.findings]
        parts += [
            "<h2>Inventory findings</h2>",
            _table(["reason", "key", "version", "what"], found),
        ]
    parts += _failed_records(s)
    if s.renewal_due:
        rows = [
            (r.encounter_id, r.renewal.reason_code, r.renewal.message)
            for r in s.tally.renewals
            if r.renewal
        ]
        parts += [
            f"<h2>Timestamp renewal due ({s.renewal_due})</h2>",
            f"<p>{html.escape(RENEWAL_JOB)}</p>",
            _table(["encounter", "reason", "detail"], rows),
        ]
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _failed_records(s: Summary) -> list[str]:
    bad = s.verified - s.tally.statuses.get(Status.PASSED.value, 0)
    if not bad:
        return []
    out = [f"<h2>Records that did not pass ({bad})</h2>"]
    for r in s.tally.failed:  # the first MAX_DETAIL; the log holds every row
        e = html.escape
        out.append(
            f"<h3>{e(r.encounter_id)} <small>pseudonym {e(r.patient_pseudonym[:16])}…, "
            f"{e(r.object_key)} v {e(r.version_id)}</small></h3>"
        )
        checks = [(c.check, c.status.value, c.reason_code, c.message) for c in r.checks]
        out.append(_table(["check", "status", "reason", "message"], checks))
    return out


def _table(header: list[str], rows: Any) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _write_private_file(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(path, text)  # reports name encounters and pseudonyms


_STYLE = (
    "<style>body{font-family:sans-serif;max-width:70em;margin:2em auto}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .5em;"
    "text-align:left;vertical-align:top}.passed{color:#070}.failed{color:#b00}"
    ".indeterminate{color:#a60}</style>"
)

"""What a backfill tells people: a line per day it ran and the totals over all of them.

Counts and reason codes only, never an id, a name or a code of a patient: the lines go to the
terminal, the ledger, Prefect's database and a markdown artifact. Each day's own run report and
audit event are written by its run as for a nightly run.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from archive.pipeline.summary import RunSummary

# The per-day counts, in the order the CLI prints them.
COUNTS = (
    "archived",
    "adopted",
    "already_archived",
    "amended",
    "quarantined",
    "quarantine_new",
    "failed",
)


def day_counts(summary: RunSummary) -> dict[str, int | float]:
    """One day's run in counts (and its seconds)."""
    return {
        "archived": summary.archived,
        "adopted": summary.adopted,
        "already_archived": summary.already_archived,
        "amended": summary.amended,
        "quarantined": summary.quarantined_total,
        "quarantine_new": summary.quarantine_new,
        "failed": summary.failed_total,
        "seconds": round(summary.duration_s, 2),
        "cluster_workers": len(summary.batches_by_worker),  # 0: this machine's process pool
    }


def day_reason(summary: RunSummary) -> str | None:
    """The reason codes of a day whose records failed, most frequent first."""
    if not summary.failed_total:
        return None
    reasons = sorted(summary.failed.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{code}: {n}" for code, n in reasons)


@dataclass
class BackfillSummary:
    since: date
    until: date
    days: int  # in the span
    skipped: int  # done by an earlier backfill, not run again
    ran: int = 0
    totals: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    failed_days: dict[str, str] = field(default_factory=dict)  # ISO day -> reason

    def add(self, day: date, counts: dict[str, int | float], reason: str | None) -> None:
        self.ran += 1
        for name in COUNTS:
            self.totals[name] += int(counts.get(name, 0))
        self.seconds += float(counts.get("seconds", 0.0))
        if reason is not None:
            self.failed_days[day.isoformat()] = reason

    @property
    def failure_message(self) -> str | None:
        if not self.failed_days:
            return None
        return (
            f"{len(self.failed_days)} of {self.ran} day(s) did not finish (first: "
            f"{min(self.failed_days)}, {self.failed_days[min(self.failed_days)]}): run the same "
            "backfill again; it retries them and skips the days done"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "days": self.days,
            "skipped": self.skipped,
            "ran": self.ran,
            **{name: self.totals[name] for name in COUNTS},
            "seconds": round(self.seconds, 2),
            "seconds_per_day": round(self.seconds / self.ran, 2) if self.ran else 0.0,
            "failed_days": dict(self.failed_days),
        }

    def to_markdown(self) -> str:
        data = self.to_dict()
        lines = [
            f"# Backfill {data['since']} .. {data['until']}",
            "",
            f"{self.days} days: {self.ran} run, {self.skipped} done earlier (skipped), "
            f"{len(self.failed_days)} failed",
            "",
            "| count | total |",
            "|---|---:|",
            *(f"| {name.replace('_', ' ')} | {data[name]} |" for name in COUNTS),
            "",
            f"{data['seconds']} s in day runs, {data['seconds_per_day']} s per day",
        ]
        lines += [f"- failed {day}: {why}" for day, why in sorted(self.failed_days.items())]
        return "\n".join(lines) + "\n"

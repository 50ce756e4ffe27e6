"""What ``emr-archive archive --since --until`` prints for a backfill: a line per day as it
finishes, then the totals. Counts and reason codes only (no PHI), as in the ledger."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import click

from archive.pipeline.backfill_ledger import DayMark


def day_line(day: date, mark: DayMark) -> None:
    c: Mapping[str, int | float] = mark.counts
    click.echo("\r" + " " * 60 + "\r", nl=False, err=True)  # clears the progress bar
    line = (
        f"  {day}  {mark.status:<6} archived {c.get('archived', 0):>5}  "
        f"adopted {c.get('adopted', 0):>4}  already {c.get('already_archived', 0):>5}  "
        f"quarantined {c.get('quarantined', 0):>4}  failed {c.get('failed', 0):>4}  "
        f"{c.get('seconds', 0.0):>7.1f} s"
    )
    click.secho(line, fg="red" if mark.status == "failed" else None)
    if mark.reason:
        click.echo(f"      {mark.reason}")


def print_backfill(result: Mapping[str, Any]) -> None:
    click.secho(
        f"backfill {result['since']} .. {result['until']}: {result['days']} days, "
        f"{result['ran']} run, {result['skipped']} done earlier (skipped), "
        f"{len(result['failed_days'])} failed",
        bold=True,
    )
    rows = [
        ("archived (new)", "archived"),
        ("adopted (stored by an interrupted run)", "adopted"),
        ("already archived (skipped)", "already_archived"),
        ("amended since archived (new version)", "amended"),
        ("quarantined", "quarantined"),
        ("  new", "quarantine_new"),
        ("failed (the days are retried by a rerun)", "failed"),
    ]
    for label, key in rows:
        click.echo(f"  {label:<42} {result[key]:>9}")
    click.echo(f"  {result['seconds']} s in day runs, {result['seconds_per_day']} s per day")
    for day, why in sorted(result["failed_days"].items()):
        click.secho(f"  failed {day}: {why}", fg="red")

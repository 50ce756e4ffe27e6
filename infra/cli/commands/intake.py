"""``emr-archive intake scans DIR --manifest FILE.csv``: digitise a shelf of paper records.

The same archive run as the nightly one (:class:`archive.pipeline.ArchiveRun`: run lock, worker
pool, sign, seal, lock, catalog, quarantine, report, audit event), fed by the paper intake
(:mod:`archive.intake`) instead of the hospital's export, and run here directly rather than as a
Prefect flow: a digitisation campaign is started by hand, batch by batch, not on a schedule.
A rerun over the same directory and manifest adopts what an interrupted run stored and skips what
the catalog holds.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from infra.cli._command import Command
from infra.cli._ctx import settings_of
from infra.cli.commands.nightly import _print_summary


@click.group("intake")
def intake_group() -> None:
    """Bring records from outside the hospital's export into the archive."""


@intake_group.command("scans", cls=Command)
@click.argument("scan_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--manifest",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="CSV (UTF-8), one row per paper record: see the README's digitisation section",
)
@click.option("--no-ocr", is_flag=True, help="PDF/A without a text layer (faster, not searchable)")
@click.option("--batch-size", type=click.IntRange(1, 5000), default=None)
@click.pass_context
def scans_cmd(
    ctx: click.Context, scan_dir: Path, manifest: Path, no_ocr: bool, batch_size: int | None
) -> None:
    """OCR, mark as converted from paper, sign, seal, lock and catalogue scanned paper records."""
    import dataclasses

    from archive.pipeline import ArchiveRun, RunOptions, window_for
    from retention import PolicyClassifier

    settings = settings_of(ctx)
    now = datetime.now(UTC)
    window = window_for(settings.archive.timezone, since=None, until=None, now=now)
    options = RunOptions.create(
        settings, window=window, source=scan_dir, now=now, batch_size=batch_size
    )
    options = dataclasses.replace(options, manifest=manifest.resolve(), ocr=not no_ocr)
    classifier = PolicyClassifier.from_settings(settings)
    with ArchiveRun.start(settings, options, classifier=classifier) as run:
        for batch in run.batches():
            run.archive_batch(batch)
        run.store_quarantine()
        summary = run.finish()
    _print_summary(summary.to_dict())
    sys.exit(1 if summary.failed_total else 0)

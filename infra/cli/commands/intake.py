"""``emr-archive intake scans DIR --manifest FILE.csv``: digitise a shelf of paper records
(:mod:`infra.intake` runs the batch)."""

from __future__ import annotations

import sys
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
    from infra.intake import run_intake

    summary = run_intake(
        settings_of(ctx), scan_dir, manifest, ocr=not no_ocr, batch_size=batch_size
    )
    _print_summary(summary.to_dict())
    if summary.ocr_timeout_records:  # archived, but not searchable on those pages: say where
        notes = settings_of(ctx).data_dir / "runs" / f"{summary.run_id}.notes.jsonl"
        click.secho(
            f"  {summary.ocr_timeout_records} record(s) {summary.ocr_timeout_caveat}: {notes}",
            fg="yellow",
        )
    sys.exit(1 if summary.failed_total else 0)

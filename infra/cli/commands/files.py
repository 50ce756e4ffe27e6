"""``emr-archive put | get``: single files through the same seal-and-lock path as records.

The end-to-end proof of a fresh installation: ``put`` seals, stores under a COMPLIANCE lock and
reads back before it reports success; ``get`` authenticates before it writes the plaintext (0600).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from infra import files
from infra.cli._command import Command
from infra.cli._ctx import settings_of


@click.command("put", cls=Command)
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--record-id", required=True, help="your identifier for the file (never in keys)")
@click.option(
    "--retain-days",
    type=click.IntRange(1, 365 * 100),
    default=1,
    show_default=True,
    help="COMPLIANCE lock length; it cannot be shortened or removed later",
)
@click.pass_context
def put_cmd(ctx: click.Context, path: Path, record_id: str, retain_days: int) -> None:
    """Seal PATH, store it under a COMPLIANCE lock, read it back and compare."""
    receipt = files.put_file(
        settings_of(ctx),
        path.read_bytes(),
        record_id=record_id,
        retain_until=datetime.now(UTC) + timedelta(days=retain_days),
    )
    click.echo(f"stored   {receipt.deposit.key}")
    click.echo(f"version  {receipt.deposit.version_id}")
    click.echo(f"locked   COMPLIANCE until {receipt.lock_until:%Y-%m-%d %H:%M} UTC")
    click.echo(
        f"sealed   {receipt.deposit.sealed_size} bytes, KEK {receipt.deposit.kek.kek_id} "
        f"v{receipt.deposit.kek.version}"
        + ("" if receipt.deposit.created else " (already stored: adopted)")
    )
    click.echo(f"read back: identical (sha256 {receipt.sha256[:16]}...)")


@click.command("get", cls=Command)
@click.option("--record-id", required=True)
@click.option("--version-id", default=None, help="default: the current version")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def get_cmd(ctx: click.Context, record_id: str, version_id: str | None, out: Path) -> None:
    """Fetch a file stored with `put`, check it and write the plaintext to OUT (0600)."""
    size = files.get_file(settings_of(ctx), record_id=record_id, version_id=version_id, out=out)
    click.echo(f"wrote {out} ({size} bytes, authenticated)")

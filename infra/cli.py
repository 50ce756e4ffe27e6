"""The ``emr-archive`` command line: thin wiring from settings to library calls.

Every command loads settings once, calls one library function per step and prints a result a
records officer can read. Errors from the archive's own exception tree are printed as one clear
line and exit with status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import click

from archive import wiring
from infra import files, prefect_server, stack
from infra.cli_common import friendly_errors as _friendly_errors
from infra.cli_common import settings_of as _settings
from infra.errors import StackError
from infra.settings import load_app_settings, settings_reference


@click.group()
@click.pass_context
@_friendly_errors
def main(ctx: click.Context) -> None:
    """emr-archive: signed, encrypted, retention-locked medical-record archive."""
    ctx.obj = load_app_settings()


# --- stack ---------------------------------------------------------------------------------------


@main.group(name="stack")
def stack_group() -> None:
    """Start, stop and inspect the embedded development stack."""


def _print_status(rows: list[stack.ComponentStatus]) -> bool:
    for row in rows:
        mark = click.style("ok  ", fg="green") if row.healthy else click.style("FAIL", fg="red")
        click.echo(f"{mark} {row.name:<12} {row.state:<9} {row.detail}")
    return all(r.healthy for r in rows)


@stack_group.command("up")
@click.pass_context
@_friendly_errors
def stack_up(ctx: click.Context) -> None:
    """Start SeaweedFS, the development PKI service and the keyring (idempotent)."""
    ok = _print_status(stack.up(_settings(ctx)))
    sys.exit(0 if ok else 1)


@stack_group.command("down")
@click.pass_context
@_friendly_errors
def stack_down(ctx: click.Context) -> None:
    """Stop the processes `stack up` started (and only those)."""
    stopped = stack.down(_settings(ctx))
    click.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@stack_group.command("status")
@click.pass_context
@_friendly_errors
def stack_status(ctx: click.Context) -> None:
    """Say what runs where, and whether it answers."""
    ok = _print_status(stack.status(_settings(ctx)))
    sys.exit(0 if ok else 1)


# --- keys ----------------------------------------------------------------------------------------


@main.group(name="keys")
def keys_group() -> None:
    """Key-encryption keys of the local keyring."""


@keys_group.command("init")
@click.pass_context
@_friendly_errors
def keys_init(ctx: click.Context) -> None:
    """Create the keyring if it does not exist."""
    ring = wiring.open_keyring(_settings(ctx), create=True)
    ref = ring.current()
    click.echo(f"keyring ready: current KEK {ref.kek_id} v{ref.version}")


@keys_group.command("rotate")
@click.pass_context
@_friendly_errors
def keys_rotate(ctx: click.Context) -> None:
    """Make a new current KEK version; older versions stay for decryption."""
    ref = wiring.open_keyring(_settings(ctx)).rotate()
    click.echo(f"new current KEK {ref.kek_id} v{ref.version} (older versions kept)")


@keys_group.command("status")
@click.pass_context
@_friendly_errors
def keys_status(ctx: click.Context) -> None:
    """Show the current KEK (never the key material)."""
    ref = wiring.open_keyring(_settings(ctx)).current()
    click.echo(f"current KEK {ref.kek_id} v{ref.version}")


# --- single files ------------------------------------------------------------------------------


@main.command("put")
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
@_friendly_errors
def put_cmd(ctx: click.Context, path: Path, record_id: str, retain_days: int) -> None:
    """Seal PATH, store it under a COMPLIANCE lock, read it back and compare."""
    settings = _settings(ctx)
    receipt = files.put_file(
        settings,
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


@main.command("get")
@click.option("--record-id", required=True)
@click.option("--version-id", default=None, help="default: the current version")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
@_friendly_errors
def get_cmd(ctx: click.Context, record_id: str, version_id: str | None, out: Path) -> None:
    """Fetch a file stored with `put`, check it and write the plaintext to OUT (0600)."""
    size = files.get_file(_settings(ctx), record_id=record_id, version_id=version_id, out=out)
    click.echo(f"wrote {out} ({size} bytes, authenticated)")


# --- catalog -------------------------------------------------------------------------------------


@main.group(name="catalog")
def catalog_group() -> None:
    """The Parquet catalog of archived records."""


@catalog_group.command("verify")
@click.pass_context
@_friendly_errors
def catalog_verify(ctx: click.Context) -> None:
    """Check the manifest hash chain and compare it with the locked bucket copies."""
    from archive.catalog import manifest_lock

    settings = _settings(ctx)
    catalog = wiring.open_catalog(settings, create=True)
    store = wiring.open_meta_store(settings)
    uploaded = catalog.sync(store, retain_until=manifest_lock(settings, datetime.now(UTC)))
    rows = catalog.rows().num_rows
    click.echo(
        f"catalog intact: {len(catalog.manifests)} manifests, {rows} records, "
        f"head {catalog.latest_manifest_sha256[:16]}...; bucket copies match"
        + (f" ({len(uploaded)} re-uploaded)" if uploaded else "")
    )


@catalog_group.command("rebuild")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.pass_context
@_friendly_errors
def catalog_rebuild(ctx: click.Context, directory: Path) -> None:
    """Rebuild a catalog into DIRECTORY from the bucket's locked manifest copies."""
    from archive.catalog import Catalog

    store = wiring.open_meta_store(_settings(ctx), read_only=True)
    catalog = Catalog.rebuild(directory, store)
    click.echo(
        f"rebuilt {len(catalog.manifests)} manifests, {catalog.rows().num_rows} records "
        f"into {directory}"
    )


# --- the nightly archive -------------------------------------------------------------------------


@main.command("sample")
@click.option("--encounters", type=click.IntRange(0, 1_000_000), default=200, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--day",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="discharge day of most encounters (default: yesterday, local time)",
)
@click.option("--bad-share", type=click.FloatRange(0, 1), default=0.05, show_default=True)
@click.pass_context
@_friendly_errors
def sample_cmd(
    ctx: click.Context,
    encounters: int,
    seed: int,
    out: Path,
    day: datetime | None,
    bad_share: float,
) -> None:
    """Write a realistic, synthetic Vietnamese FHIR Bulk Data export (deterministic per seed)."""
    from infra.sample.generator import write_sample_export

    tz = _settings(ctx).archive.timezone
    chosen = day.date() if day else _yesterday(tz)
    summary = write_sample_export(
        out, encounters=encounters, seed=seed, day=chosen, bad_share=bad_share, tz=tz
    )
    bad = sum(summary.bad_counts().values())
    click.echo(
        f"wrote {summary.encounters} encounters to {out} ({summary.size_bytes:,} bytes): "
        f"{len(summary.in_window)} finished on {chosen}, {bad} planted bad records"
    )


@main.command("archive")
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="first discharge day (local); default: the look-back days up to yesterday",
)
@click.option(
    "--until",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="last discharge day (local, inclusive); default: --since",
)
@click.option(
    "--source",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="FHIR Bulk Data export directory (default: EMR_ARCHIVE_ARCHIVE__SOURCE_DIR)",
)
@click.option("--batch-size", type=click.IntRange(1, 5000), default=None)
@click.pass_context
@_friendly_errors
def archive_cmd(
    ctx: click.Context,
    since: datetime | None,
    until: datetime | None,
    source: Path | None,
    batch_size: int | None,
) -> None:
    """Run the nightly archive once now (Prefect server if running, else ephemeral)."""
    settings = _settings(ctx)
    prefect_server.apply_environment(settings)
    from flows import nightly
    from flows.outcome import summary_of

    nightly.PROGRESS = _progress_line
    result = summary_of(
        nightly.nightly_archive,
        since=since.date() if since else None,
        until=until.date() if until else None,
        source=str(source) if source else None,
        batch_size=batch_size,
    )
    click.echo("")
    _print_summary(result)
    sys.exit(1 if result["failed_total"] else 0)


@main.command("serve")
@click.pass_context
@_friendly_errors
def serve_cmd(ctx: click.Context) -> None:
    """Run the scheduled deployments (nightly 01:00 local) until stopped."""
    settings = _settings(ctx)
    if prefect_server.process(settings).pid() is None and settings.uses_embedded_s3:
        raise StackError("schedules need the Prefect server: run `emr-archive stack up` first")
    prefect_server.apply_environment(settings)
    from prefect import serve

    from flows.deployments import deployments

    serve(*deployments(settings))


def _yesterday(tz: str) -> date:
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo(tz)).date() - timedelta(days=1)


def _progress_line(done: int, total: int) -> None:
    width = 30
    filled = width * done // total if total else 0
    bar = "#" * filled + "-" * (width - filled)
    click.echo(f"\r  [{bar}] {done}/{total} encounters", nl=False, err=True)


def _print_summary(result: dict[str, object]) -> None:
    rows = [
        ("archived (new)", result["archived"]),
        ("adopted (stored by an interrupted run)", result["adopted"]),
        ("already archived (skipped)", result["already_archived"]),
        ("amended since archived (new version)", result["amended"]),
        ("quarantined", result["quarantined_total"]),
        ("  new this run", result["quarantine_new"]),
        ("failed (left for the next run)", result["failed_total"]),
    ]
    click.secho(
        f"run {result['run_id']}  window {result['window_start']} .. {result['window_end']}",
        bold=True,
    )
    for label, value in rows:
        click.echo(f"  {label:<40} {value:>7}")
    for title in ("quarantined", "failed"):
        counts = result[title]
        assert isinstance(counts, dict)
        for reason, n in sorted(counts.items()):
            click.echo(f"    {title} {reason:<32} {n:>7}")
    click.echo(
        f"  signed PDF bytes {result['pdf_bytes']:,}, sealed {result['sealed_bytes']:,}; "
        f"{result['duration_s']:.1f} s, {result['throughput_per_s']} records/s"
    )


# --- settings -------------------------------------------------------------------------------------


@main.command("settings")
@click.option("--markdown", is_flag=True, help="print the reference table for the README")
@click.pass_context
@_friendly_errors
def settings_cmd(ctx: click.Context, markdown: bool) -> None:
    """List every setting: environment variable, default and meaning."""

    rows = settings_reference()
    if markdown:
        click.echo("| variable | default | meaning |\n|---|---|---|")
        for env, default, text in rows:
            click.echo(f"| `{env}` | `{default}` | {text} |")
        return
    for env, default, text in rows:
        click.echo(f"{env:<44} {default:<20} {text}")


@main.command("demo")
@click.pass_context
@_friendly_errors
def demo_cmd(ctx: click.Context) -> None:
    """Run the main job on the embedded stack and show the result (`make demo`)."""
    from infra import demo

    demo.run_demo(_settings(ctx))
    demo.closing_hint(_settings(ctx))


def _register_retention_commands() -> None:
    """hold, retention, disposition and audit live in infra.cli_retention."""
    from infra.cli_retention import COMMANDS

    for command in COMMANDS:
        main.add_command(command)


_register_retention_commands()


def _register_verification_commands() -> None:
    """verify and verify-file live in infra.cli_verify."""
    from infra.cli_verify import verify_cmd, verify_file_cmd

    main.add_command(verify_cmd)
    main.add_command(verify_file_cmd)


_register_verification_commands()


def _register_retrieval_commands() -> None:
    """search, retrieve, grant, user, login and logout live in infra.cli_retrieval."""
    from infra.cli_retrieval import COMMANDS

    for command in COMMANDS:
        main.add_command(command)


_register_retrieval_commands()


if __name__ == "__main__":
    main()


def _register_portal_command() -> None:
    """portal lives in infra.cli_portal (imports FastAPI only when it runs)."""
    from infra.cli_portal import COMMANDS

    for command in COMMANDS:
        main.add_command(command)


_register_portal_command()

"""``emr-archive sample | archive | serve``: the nightly archive, once now or on its schedule, and
a synthetic export to run it on.

``archive`` runs the Prefect flow once (on the stack's Prefect server if one runs, else an
ephemeral one) and exits 1 when any record failed and was left for the next run; ``serve`` runs
the scheduled deployments until stopped. Prefect is imported only inside the commands: it takes
seconds to import.
"""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import click

from infra import prefect_server
from infra.cli._command import Command
from infra.cli._ctx import settings_of
from infra.errors import StackError


@click.command("sample", cls=Command)
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
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["fhir", "qd130"]),
    default="fhir",
    show_default=True,
    help="FHIR Bulk Data export, or the QĐ 130 XML a HIS sends to social insurance",
)
@click.pass_context
def sample_cmd(
    ctx: click.Context,
    encounters: int,
    seed: int,
    out: Path,
    day: datetime | None,
    bad_share: float,
    fmt: str,
) -> None:
    """Write a realistic, synthetic Vietnamese export (FHIR or QĐ 130; deterministic per seed)."""
    from infra.sample.generator import write_sample_export

    tz = settings_of(ctx).archive.timezone
    chosen = day.date() if day else _yesterday(tz)
    if fmt == "qd130":
        from infra.sample.qd130 import write_qd130_export
        from infra.sample.qd130_signing import CERT_FILE, dev_facility

        # The development facility's XML signing key, generated once under var/ (never
        # committed); its certificate is what EMR_ARCHIVE_ARCHIVE__FACILITY_CERTS names.
        key_dir = settings_of(ctx).data_dir / "qd130-dev-facility"
        facility = dev_facility(key_dir)
        qd = write_qd130_export(
            out, encounters=encounters, seed=seed, day=chosen, tz=tz, facility=facility
        )
        click.echo(
            f"wrote {encounters} QĐ 130 HOSO to {out} ({qd.size_bytes:,} bytes): "
            f"{len(qd.archived)} finished on {chosen}, "
            f"{len(qd.held) + len(qd.files)} planted bad records or files, "
            f"{len(qd.signed)} in files signed by the development facility "
            f"(certificate: {key_dir / CERT_FILE})"
        )
        return
    summary = write_sample_export(
        out, encounters=encounters, seed=seed, day=chosen, bad_share=bad_share, tz=tz
    )
    bad = sum(summary.bad_counts().values())
    click.echo(
        f"wrote {summary.encounters} encounters to {out} ({summary.size_bytes:,} bytes): "
        f"{len(summary.in_window)} finished on {chosen}, {bad} planted bad records"
    )


@click.command("archive", cls=Command)
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
    help="FHIR Bulk Data export directory (default: EMR_ARCHIVE_ARCHIVE__SOURCE_DIR, or with "
    "--facility that facility's directory in EMR_ARCHIVE_ARCHIVE__FACILITIES)",
)
@click.option(
    "--facility",
    default=None,
    metavar="CODE",
    help="archive only this facility's encounters (MA_CSKCB), under its own run lock and lease",
)
@click.option("--batch-size", type=click.IntRange(1, 5000), default=None)
@click.option(
    "--redo",
    is_flag=True,
    help="backfill: run again the days an earlier backfill finished (to take amendments)",
)
@click.option(
    "--lock-wait",
    type=click.IntRange(0, 24 * 60),
    default=60,
    show_default=True,
    help="backfill: minutes a day waits for a nightly run that holds the catalog",
)
@click.pass_context
def archive_cmd(
    ctx: click.Context,
    since: datetime | None,
    until: datetime | None,
    source: Path | None,
    facility: str | None,
    batch_size: int | None,
    redo: bool,
    lock_wait: int,
) -> None:
    """Run the nightly archive once now (Prefect server if running, else ephemeral); over
    several days, a resumable backfill that runs them one day at a time."""
    from archive.pipeline import admit_source
    from archive.pipeline.options import backfill_days, window_for

    settings = settings_of(ctx)
    if facility is not None:
        source = _facility_source(settings.archive.facilities, facility, source)
    chosen = source or settings.archive.source_dir
    now = datetime.now(UTC)
    if chosen is not None:
        # The run checks this too; checking here first refuses with one line instead of a
        # failed flow run's traceback.
        admit_source(settings, chosen, run_id=None, now=now)
    first = since.date() if since else None
    last = until.date() if until else first
    tz = settings.archive.timezone
    window_for(tz, since=first, until=last, now=now)  # refuses a bad window in one line
    if settings.cluster.scheduler_address:  # one line and exit 5, not a failed flow run
        from flows.cluster import ensure_cluster

        ensure_cluster(
            settings.cluster.scheduler_address, timeout_s=settings.cluster.connect_timeout_s
        )
    if first is not None and last is not None and last != first:
        backfill_days(tz, since=first, until=last, now=now)  # the same, before Prefect starts
        prefect_server.apply_environment(settings)
        _backfill(
            first, last, source, facility, batch_size, redo=redo, lock_wait_s=lock_wait * 60.0
        )
        return
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
        facility=facility,
    )
    click.echo("")
    _print_summary(result)
    sys.exit(1 if result["failed_total"] else 0)


@click.command("serve", cls=Command)
@click.pass_context
def serve_cmd(ctx: click.Context) -> None:
    """Run the scheduled deployments (nightly 01:00 local) until stopped."""
    settings = settings_of(ctx)
    if prefect_server.process(settings).pid() is None and settings.uses_embedded_s3:
        raise StackError("schedules need the Prefect server: run `emr-archive stack up` first")
    prefect_server.apply_environment(settings)
    from prefect import serve

    from flows.deployments import deployments

    serve(*deployments(settings))


def _backfill(
    since: date,
    until: date,
    source: Path | None,
    facility: str | None,
    batch_size: int | None,
    *,
    redo: bool,
    lock_wait_s: float,
) -> None:
    from flows import backfill, nightly
    from flows.outcome import summary_of
    from infra.cli.commands.backfill_lines import day_line, print_backfill

    nightly.PROGRESS = _progress_line
    backfill.DAY_DONE = day_line
    result = summary_of(
        backfill.backfill_archive,
        since=since,
        until=until,
        source=str(source) if source else None,
        facility=facility,
        batch_size=batch_size,
        redo=redo,
        lock_wait_s=lock_wait_s,
    )
    click.echo("\r" + " " * 60 + "\r", nl=False, err=True)
    print_backfill(result)
    sys.exit(1 if result["failed_days"] else 0)


def _facility_source(facilities: dict[str, Path], facility: str, source: Path | None) -> Path:
    """``source``, else the export directory ``[archive] facilities`` names for ``facility``; a
    code the setting would not accept, or one it does not list, is refused in one line before
    any work."""
    from archive.core.errors import ConfigError
    from archive.pipeline.lease import ALL_FACILITIES, check_facility

    if check_facility(facility) == ALL_FACILITIES:  # the lease of runs over the whole export
        raise ConfigError(f"--facility {ALL_FACILITIES!r} is reserved: omit --facility instead")
    if source is not None:
        return source
    if facility not in facilities:
        raise ConfigError(
            f"facility {facility} has no export directory in EMR_ARCHIVE_ARCHIVE__FACILITIES "
            f"(it lists {', '.join(sorted(facilities)) or 'none'}): add it, or pass --source DIR"
        )
    return facilities[facility]


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

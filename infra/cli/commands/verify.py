"""``emr-archive verify | verify-file``: prove the archive, or one PDF from anywhere, is intact.

``verify`` runs the verification flow (Prefect, imported inside the command) over the whole
archive, a sample of every day, or the records signed since a day; ``verify-file`` checks one
signed PDF offline: signed by one of the hospital's signing certificates (the configured one,
``EMR_ARCHIVE_SIGNER__PINNED_SIGNERS``, the local catalog's signers if there is a catalog) and
timestamped by TSAs under the TSA trust roots. Exit status: 0 when everything passed, 1
when anything failed or was indeterminate (a record, an archive-wide check), 2 for a configuration
or usage error (as every command).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from infra import prefect_server
from infra.cli._command import Command
from infra.cli._ctx import settings_of
from verification.results import CheckResult, Status, bottom_line

_AT_HELP = (
    "judge as if on this date: YYYY-MM-DD (its end, UTC), an ISO instant with offset, or +30y"
)
_MARK = {
    Status.PASSED: ("ok  ", "green"),
    Status.FAILED: ("FAIL", "red"),
    Status.INDETERMINATE: ("??  ", "yellow"),
}


@click.command("verify", cls=Command)
@click.option(
    "--mode", type=click.Choice(["full", "sample", "since"]), default="sample", show_default=True
)
@click.option(
    "--share",
    type=click.FloatRange(0, 1, min_open=True),
    default=None,
    help="sample mode: share of every archive day [default: 0.1]",
)
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="since mode: first local day (records signed on or after it)",
)
@click.option("--seed", type=int, default=None, help="sample mode: reproduce an earlier sample")
@click.option("--fixity-only", is_flag=True, help="skip signature and PDF/A validation")
@click.option("--at", "at", default=None, metavar="DATE", help=_AT_HELP)
@click.pass_context
def verify_cmd(
    ctx: click.Context,
    mode: str,
    share: float | None,
    since: datetime | None,
    seed: int | None,
    fixity_only: bool,
    at: str | None,
) -> None:
    """Verify the archive now (or as of --at DATE): present, unchanged, decryptable, validly
    signed, PDF/A, locked, proven by its evidence record."""
    if mode == "since" and since is None:
        raise click.UsageError("--mode since needs --since YYYY-MM-DD")
    as_of = _moment(at)
    if as_of is not None and as_of < datetime.now(UTC):
        # Records archived since would be judged on a day they did not exist (their evidence
        # "pending"): the archive as it stood then is not what it holds now.
        raise click.BadParameter("must not be in the past for the archive", param_hint="--at")
    if settings_of(ctx).cluster.scheduler_address:  # one line and exit 5, not a failed flow run
        from flows.cluster import ensure_cluster

        cluster = settings_of(ctx).cluster
        ensure_cluster(cluster.scheduler_address, timeout_s=cluster.connect_timeout_s)
    prefect_server.apply_environment(settings_of(ctx))
    from flows import verify
    from flows.outcome import summary_of

    verify.PROGRESS = _progress_line
    verify.SETTINGS = settings_of(ctx)
    result = summary_of(
        verify.verify_archive,
        mode=mode,
        share=share,
        since=since.date() if since else None,
        seed=seed,
        checks="fixity" if fixity_only else "full",
        at=as_of,
    )
    click.echo("")
    _print_summary(result)
    sys.exit(0 if result["status"] == Status.PASSED.value else 1)


@click.command("verify-file", cls=Command)
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--verbose", is_flag=True, help="also print what the PDF libraries logged")
@click.option("--at", "at", default=None, metavar="DATE", help=_AT_HELP)
@click.option(
    "--evidence",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="the PDF's RFC 4998 evidence record (.ers): proof of existence for its signature",
)
@click.pass_context
def verify_file_cmd(
    ctx: click.Context, path: Path, verbose: bool, at: str | None, evidence: Path | None
) -> None:
    """Validate one signed PDF from anywhere (an inspector's copy): signature, PDF/A, data;
    with --at, as if on that date; with --evidence, its evidence record too."""
    from archive import wiring
    from archive.sign import captured_library_log
    from verification.as_of import document_as_of
    from verification.document import renewal_need
    from verification.settings import weak_table

    as_of = _moment(at)  # a usage error before anything is loaded
    settings = settings_of(ctx)
    pdf = path.read_bytes()
    now = as_of or datetime.now(UTC)
    trust = wiring.trust_policy(settings)
    record = evidence.read_bytes() if evidence is not None else None
    if as_of is not None:
        click.echo(f"as of {as_of:%Y-%m-%d %H:%M}Z")
    # A hostile file makes pyHanko log tracebacks; the verdict is one line, the log on request.
    with captured_library_log() as log:
        weak = weak_table(settings)
        results, proven = document_as_of(pdf, trust=trust, as_of=now, evidence=record, weak=weak)
        renewal = renewal_need(
            pdf, now=now, settings=settings.verification, weak=weak, proven_at=proven
        )
    _print_checks(results)
    if verbose:
        for line in log:
            click.echo(f"     log {line}")
    if renewal is not None:
        click.echo(f"note {renewal.reason_code}: {renewal.message}")
    verdict = bottom_line(results)
    click.secho(f"{path.name}: {verdict.value.upper()}", bold=True)
    sys.exit(0 if verdict is Status.PASSED else 1)


def _moment(at: str | None) -> datetime | None:
    from verification.as_of import parse_moment

    if at is None:
        return None
    try:
        return parse_moment(at, now=datetime.now(UTC))
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--at") from e


def _print_checks(results: tuple[CheckResult, ...]) -> None:
    for r in results:
        mark, colour = _MARK[r.status]
        click.echo(f"{click.style(mark, fg=colour)} {r.check:<14} {r.reason_code:<32} {r.message}")


def _progress_line(done: int, total: int) -> None:
    width = 30
    filled = width * done // total if total else width
    bar = "#" * filled + "." * (width - filled)
    click.echo(f"\r  [{bar}] {done}/{total} records", nl=False)


def _print_summary(result: dict[str, object]) -> None:
    status = str(result["status"])
    colour = {"passed": "green", "failed": "red"}.get(status, "yellow")
    click.secho(f"verification {result['run_id']}: {status.upper()}", fg=colour, bold=True)
    click.echo(f"  {result['mode']}; {result['verified']} record(s) in {result['duration_s']} s")
    records = result["records"]
    assert isinstance(records, dict)
    for label, count in records.items():
        click.echo(f"  {label:<16} {count:>7}")
    click.echo(f"  {'renewal due':<16} {result['renewal_due']:>7}")
    reasons = result["reasons"]
    assert isinstance(reasons, dict)
    for code, count in reasons.items():
        click.echo(f"  reason {code:<40} {count:>5}")
    click.echo(f"  report: {result['report']}")
    click.echo(f"  log:    {result['log']}")

"""``emr-archive lease show``: who holds each facility's run lease in the bucket.

When a run is refused because another holds its facility (:mod:`archive.pipeline.lease`), this
says which run, on which machine, since when and until when, so an operator can tell a live run
from a dead machine's lease that will expire. Run ids, host names, pids and times only: no PHI.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from infra.cli._command import Group
from infra.cli._ctx import settings_of

if TYPE_CHECKING:
    from archive.core.settings import Settings
    from archive.pipeline.lease import LeaseRecord
    from archive.store import ClaimStore


@click.group(name="lease", cls=Group)
def lease_group() -> None:
    """The archive runs' leases on their facilities, in the bucket."""


@lease_group.command("show")
@click.option(
    "--facility",
    default=None,
    metavar="CODE",
    help="only this facility's lease (MA_CSKCB; 'all' is the lease of runs over the whole export)",
)
@click.pass_context
def lease_show(ctx: click.Context, facility: str | None) -> None:
    """Print each facility's current lease: run id, machine, acquired, expires."""
    from archive.pipeline.lease import check_facility, leases

    if facility is not None:
        check_facility(facility)  # one line before the store is opened
    found = leases(open_lease_store(settings_of(ctx)), facility)
    if not found:
        click.echo(f"facility {facility}: never leased" if facility else "no run leases")
        return
    now = datetime.now(UTC)
    for code, record in found.items():
        click.echo(describe(code, record, now))


def describe(facility: str, record: LeaseRecord, now: datetime) -> str:
    state = "released" if record.released else "held" if record.live(now) else "expired"
    acquired, expires = record.acquired.astimezone(UTC), record.expires.astimezone(UTC)
    return (
        f"{facility:<10} {state:<8} run {record.run_id} on {record.host} (pid {record.pid}), "
        f"acquired {acquired:%Y-%m-%d %H:%M:%S}Z, expires {expires:%Y-%m-%d %H:%M:%S}Z"
    )


def open_lease_store(settings: Settings) -> ClaimStore:
    """The primary site's bucket, sealed under the archive's keys, as runs write the leases
    (:meth:`archive.pipeline.runlock.RunLock.for_run`); read-only."""
    from archive.seal import open_keys
    from archive.store import S3ObjectStore, SealedStore

    plain = S3ObjectStore.from_settings(settings, read_only=True)
    return SealedStore(plain, keys=open_keys(settings), settings=settings.seal)

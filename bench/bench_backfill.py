"""What a backfill costs per day, beside one run over the same days.

Run by hand: ``python -m bench.bench_backfill [--encounters 200] [--days 7] [--rounds 2]``. It
starts a throwaway embedded stack, writes a sample export (most encounters finished on one day, a
few the day before), and archives the ``--days`` days up to that day, each round on a fresh bucket
and catalog, alternating:

- one run: the ``nightly-archive`` flow over the whole window (one manifest);
- backfill: the ``backfill-archive`` flow, one run per day (a manifest, an evidence tree, a report
  and an audit event per day), as ``emr-archive archive --since --until`` does.

It prints wall and CPU seconds (this process and its pool workers) of each, the backfill's
seconds per day, and the fixed cost of a day with no encounters (start: store and catalog checks,
signer; end: evidence stage, report, audit): what ten years of days cost beyond their records.
Nothing is asserted: the machine is shared and noisy; say its load (``uptime``) with the figures.
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bench.common import table, throwaway_stack
from infra.sample.generator import write_sample_export
from infra.settings import AppSettings as Settings

DAY = date(2026, 11, 22)


def _cpu() -> float:
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _fresh_archive(settings: Settings) -> None:
    """A new bucket and catalog for the next measurement (nothing archived yet)."""
    from archive.store import S3ObjectStore

    bucket = f"bench-{secrets.token_hex(4)}"
    fresh = settings.model_copy(update={"s3": settings.s3.model_copy(update={"bucket": bucket})})
    S3ObjectStore.from_settings(fresh).create_locked_bucket()
    os.environ["EMR_ARCHIVE_S3__BUCKET"] = bucket
    # The audit log and the registers live beside the catalog: a directory of their own too.
    os.environ["EMR_ARCHIVE_CATALOG__CATALOG_DIR"] = str(settings.data_dir / bucket / "catalog")


def measure(kind: str, settings: Settings, export: Path, first: date) -> dict[str, Any]:
    from flows import backfill, nightly
    from flows.outcome import summary_of

    _fresh_archive(settings)
    days: list[tuple[date, float, int]] = []
    backfill.DAY_DONE = lambda day, mark: days.append(
        (day, float(mark.counts["seconds"]), int(mark.counts["archived"]))
    )
    wall, cpu = time.perf_counter(), _cpu()
    if kind == "one run":
        result = summary_of(nightly.nightly_archive, since=first, until=DAY, source=str(export))
    else:
        result = summary_of(backfill.backfill_archive, since=first, until=DAY, source=str(export))
    return {
        "kind": kind,
        "archived": result["archived"],
        "wall": time.perf_counter() - wall,
        "cpu": _cpu() - cpu,
        "days": days,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--encounters", type=int, default=200)
    parser.add_argument("--days", type=int, default=7, help="days up to the sample's day")
    parser.add_argument("--rounds", type=int, default=2, help="pairs, alternated")
    args = parser.parse_args()
    first = DAY - timedelta(days=args.days - 1)
    with throwaway_stack(full=True) as settings:
        os.environ["EMR_ARCHIVE_DATA_DIR"] = str(settings.data_dir)
        for name, value in settings.stack.model_dump().items():
            os.environ[f"EMR_ARCHIVE_STACK__{name.upper()}"] = str(value)
        export = settings.exports_dir / "bench"
        write_sample_export(export, encounters=args.encounters, seed=7, day=DAY, bad_share=0)
        from prefect import flow

        @flow
        def warm_up() -> None:  # Prefect's ephemeral API up before timing
            return None

        warm_up()
        results = []
        for i in range(args.rounds):
            order = ("one run", "backfill") if i % 2 == 0 else ("backfill", "one run")
            results += [measure(kind, settings, export, first) for kind in order]
    rows = [("", "archived", "wall s", "CPU s")]
    for r in results:
        rows.append((r["kind"], str(r["archived"]), f"{r['wall']:.1f}", f"{r['cpu']:.1f}"))
    print(table(rows))
    empty = [s for r in results for _, s, n in r["days"] if n == 0]
    full = [(s, n) for r in results for _, s, n in r["days"] if n > 0]
    print()
    print(
        table(
            [
                ("backfill day", "days", "mean s", "records"),
                ("no encounters", str(len(empty)), f"{sum(empty) / max(1, len(empty)):.2f}", "0"),
                *[("with encounters", "1", f"{s:.2f}", str(n)) for s, n in full],
            ]
        )
    )
    print(f"\nload: {os.getloadavg()}")


if __name__ == "__main__":
    main()

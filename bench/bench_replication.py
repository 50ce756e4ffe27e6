"""What the second site costs the nightly run, and how fast a lost primary is repaired.

Run by hand: ``python -m bench.bench_replication [--encounters 60] [--pairs 2]``. One throwaway
stack with both sites (two SeaweedFS on these cores). The nightly run's work (the
:class:`ArchiveRun` the ``nightly-archive`` flow drives, without Prefect) archives the same
day's export, alternately without the replica and with it (synchronous dual writes), each
run into a bucket and catalog of its own, ``--pairs`` times. Per run: wall time, and CPU seconds
of the flow's process and its workers, of the primary's SeaweedFS and of the replica's: on a
shared, loaded machine the CPU is the comparable figure (every process's share of the cores
moves with the load, its CPU seconds much less). Target (issue #15): < 15 % with dual writes.

Then the primary site is lost (SeaweedFS stopped, data directory deleted, started empty) and the
last dual-write run's bucket is repaired from the replica (``repair --site primary``, 8 in
flight, no key used): records/s, objects/s, and the re-homed map written.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bench.bench_nightly import DAY, write_day
from bench.common import table, throwaway_stack
from infra.settings import AppSettings as Settings

if TYPE_CHECKING:
    from archive.pipeline import RunSummary

_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Cpu:
    flow: float  # this process and its reaped workers
    primary: float  # the primary's SeaweedFS
    replica: float

    @property
    def total(self) -> float:
        return self.flow + self.primary + self.replica

    def __sub__(self, other: Cpu) -> Cpu:
        return Cpu(
            self.flow - other.flow, self.primary - other.primary, self.replica - other.replica
        )


def _proc_cpu(pid: int | None) -> float:
    """CPU seconds of ``pid`` and its reaped children (``weed mini`` runs its servers inside)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / _TICK  # utime stime cutime cstime


def cpu_now(settings: Settings) -> Cpu:
    from infra import seaweed

    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    flow = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    primary = _proc_cpu(seaweed.process(settings, "primary").pid())
    replica = _proc_cpu(seaweed.process(settings, "replica").pid())
    return Cpu(flow, primary, replica)


def archive_day(settings: Settings, export: Path) -> RunSummary:
    """The nightly run's work without Prefect (whose ephemeral server does not always start on
    a loaded machine): the same :class:`ArchiveRun` the flow's tasks drive, its process pool."""
    from archive.pipeline import ArchiveRun, RunOptions, window_for
    from retention.classifier import PolicyClassifier

    now = datetime.now(UTC)
    options = RunOptions.create(
        settings,
        window=window_for(settings.archive.timezone, since=DAY, until=None, now=now),
        source=export,
        now=now,
    )
    with ArchiveRun.start(
        settings, options, classifier=PolicyClassifier.from_settings(settings)
    ) as run:
        for batch in run.batches():
            run.archive_batch(batch)
        run.store_quarantine()
        return run.finish()


def one_run(settings: Settings, export: Path, *, replica: bool, n: int) -> tuple[str, ...]:
    from archive.core.settings import ReplicaSettings
    from archive.store import S3ObjectStore

    bucket = f"bench-{'dual' if replica else 'single'}-{n}"
    run = settings.model_copy(
        update={
            "s3": settings.s3.model_copy(update={"bucket": bucket}),
            "replica": ReplicaSettings(enabled=replica, bucket=bucket),
            "catalog": settings.catalog.model_copy(
                update={"catalog_dir": settings.data_dir / bucket / "catalog"}
            ),
        }
    )
    both = run.model_copy(update={"replica": ReplicaSettings(enabled=True, bucket=bucket)})
    S3ObjectStore.from_settings(both).create_locked_bucket()
    S3ObjectStore.from_settings(both, site="replica").create_locked_bucket()
    before = cpu_now(settings)
    started = time.perf_counter()
    summary = archive_day(run, export)
    wall = time.perf_counter() - started
    used = cpu_now(settings) - before
    done = summary.archived + summary.adopted
    label = "two sites" if replica else "primary only"
    return (
        label,
        str(done),
        f"{wall:.1f}",
        f"{used.flow:.1f}",
        f"{used.primary:.1f}",
        f"{used.replica:.1f}",
        f"{used.total:.1f}",
    )


def repair_primary(settings: Settings, bucket: str) -> tuple[str, ...]:
    from archive.core.settings import ReplicaSettings
    from archive.store import S3ObjectStore
    from infra import seaweed
    from infra.repair import repair_site

    run = settings.model_copy(
        update={
            "s3": settings.s3.model_copy(update={"bucket": bucket}),
            "replica": ReplicaSettings(enabled=True, bucket=bucket),
            "catalog": settings.catalog.model_copy(
                update={"catalog_dir": settings.data_dir / bucket / "catalog"}
            ),
        }
    )
    seaweed.stop(settings)
    shutil.rmtree(settings.seaweedfs_dir)
    seaweed.start(settings)
    S3ObjectStore.from_settings(run).create_locked_bucket()  # empty, Object Lock on
    started = time.perf_counter()
    report = repair_site(run, site="primary", threads=8)
    wall = time.perf_counter() - started
    assert report.ok, report.refused[:3]
    return (
        "repair --site primary --threads 8",
        str(report.rehomed),
        str(len(report.copied)),
        f"{wall:.1f}",
        f"{report.rehomed / wall:.1f}",
        f"{len(report.copied) / wall:.1f}",
        f"{report.rehomed_segments}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--encounters", type=int, default=60, help="finished on the day")
    parser.add_argument("--pairs", type=int, default=2, help="runs without/with the replica")
    args = parser.parse_args()
    with throwaway_stack(full=True, replica=True) as settings:
        export = settings.exports_dir / "bench"
        print(f"sample: {write_day(settings, export, 'fhir', args.encounters)} ({DAY})")
        rows: list[tuple[str, ...]] = [
            ("run", "encounters", "wall s", "flow CPU s", "primary CPU", "replica CPU", "CPU")
        ]
        # Discarded: the first run in this process pays the imports and caches the others reuse.
        one_run(settings, export, replica=False, n=99)
        for n in range(args.pairs):
            rows.append(one_run(settings, export, replica=False, n=n))
            rows.append(one_run(settings, export, replica=True, n=n))
        print(table(rows))
        single = [float(r[-1]) for r in rows[1:] if r[0] == "primary only"]
        dual = [float(r[-1]) for r in rows[1:] if r[0] == "two sites"]
        walls = [(float(a[2]), float(b[2])) for a, b in zip(rows[1::2], rows[2::2], strict=True)]
        cost = (sum(dual) / sum(single) - 1) * 100
        # In production the replica's store runs at the other site, not on the archive's cores.
        here = [float(r[3]) + float(r[4]) for r in rows[1:]]
        local = (sum(here[1::2]) / sum(here[0::2]) - 1) * 100
        wall_cost = (sum(b for _, b in walls) / sum(a for a, _ in walls) - 1) * 100
        print(
            f"\nreplication's cost: CPU {cost:+.1f} % (without the replica's own store: "
            f"{local:+.1f} %), wall {wall_cost:+.1f} % (target < 15 %)"
        )
        repair = repair_primary(settings, f"bench-dual-{args.pairs - 1}")
        print()
        print(
            table(
                [
                    ("primary lost", "records", "objects", "s", "records/s", "objects/s", "map"),
                    repair,
                ]
            )
        )
    print(f"load: {os.getloadavg()}")


if __name__ == "__main__":
    main()

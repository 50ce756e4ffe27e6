"""Verification throughput, full and fixity-only, with a stage breakdown and peak RSS.

Run by hand: ``python -m bench.bench_verify [--encounters 500] [--baseline 60]``. It starts a
throwaway embedded stack (SeaweedFS + PKI service), archives a sample day with the archive library,
then verifies every record:

- full (object, unseal, signature B-LTA offline, PDF/A, embedded data, lock) on every core;
- fixity only (object, unseal, embedded data, lock: no signature or structure validation);
- a baseline on a subset: the same full checks in one process (workers = 1);
- CPU per check on a sample, in this process (bench.verify_cpu): as verification runs, "cold"
  (nothing shared between records or checks: close to the code before issue #15 item 2) and
  stock pyHanko (``validate_pdf_signature`` with a fresh ValidationContext per document), beside
  the issue's figures from before (measured as wall seconds on a loaded machine).

Each verification line gives, besides records/s, the steady CPU per record (after the pool
started) of the pool, this process and SeaweedFS (read from /proc): the stack shares the cores,
so its CPU bounds the throughput as much as ours.

The library is timed, not the Prefect flow (the flow adds ~1 s of tasks per run, see
bench_nightly for orchestration overhead). Nothing is asserted: the machine is shared and noisy.
Targets (issue #15 item 2): full >= 50 records/s, fixity >= 500 records/s, >= 5x stock pyHanko.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from archive.pipeline import ArchiveRun, RunOptions, window_for
from bench.common import table, throwaway_stack
from bench.verify_cpu import STAGES, check_cpu, cold, stock_cpu
from infra.sample.generator import write_sample_export
from infra.settings import AppSettings as Settings
from retention import PolicyClassifier
from verification.config import HoldSet, VerificationSettings
from verification.inventory import open_catalog
from verification.report import Summary
from verification.run import RunPlan, VerificationRun
from verification.select import Mode, Selection, catalog_rows
from verification.worker import environment

DAY = date(2026, 11, 22)
# Issue #15's figures before this work, ms per record (full: 19 records/s, fixity 253/s).
ISSUE_MS = {"signature": "63", "pdfa": "19", "horizon": "10"}


def archive_day(settings: Settings, encounters: int) -> int:
    export = settings.exports_dir / "bench"
    write_sample_export(export, encounters=encounters, seed=5, day=DAY, bad_share=0.0)
    window = window_for(settings.archive.timezone, since=DAY, until=None, now=datetime.now(UTC))
    options = RunOptions.create(settings, window=window, source=export, now=datetime.now(UTC))
    with ArchiveRun.start(
        settings, options, classifier=PolicyClassifier.from_settings(settings)
    ) as run:
        for batch in run.batches():
            run.archive_batch(batch)
        summary = run.finish()
    return summary.archived


def verify(
    settings: Settings, *, checks: str, workers: int, limit: int | None = None, threads: int = 4
) -> Summary:
    out = settings.data_dir / "verify"
    vsettings = VerificationSettings(workers=workers, threads=threads, output_dir=out)
    plan = RunPlan.create(
        settings,
        vsettings,
        selection=Selection(mode=Mode.FULL),
        now=datetime.now(UTC),
        checks=checks,
    )
    begin = time.perf_counter()
    cpu = _cpu_seconds()
    with VerificationRun.start(settings, vsettings, plan) as run:
        started = time.perf_counter()
        rows = run.rows if limit is None else run.rows[:limit]
        run.verify_batch(rows[: 2 * plan.workers])  # spawn and initialise every worker
        warm = time.perf_counter()
        pool, store, mine = _cpu_of(_pool_pids()), _cpu_of(_store_pids(settings)), _cpu_seconds()
        size = plan.batch_size
        for i in range(0, len(rows), size):
            run.verify_batch(rows[i : i + size])
        steady = time.perf_counter() - warm
        pool = _cpu_of(_pool_pids()) - pool
        store = _cpu_of(_store_pids(settings)) - store
        mine = _cpu_seconds() - mine
        summary = run.finish()
    cpu = _cpu_seconds() - cpu  # the pool's processes are reaped when the run closes
    n = len(rows)
    print(
        f"  {checks}: start (catalog, bucket copies, inventory) {started - begin:.2f} s, "
        f"pool start {warm - started:.2f} s, records {steady:.2f} s "
        f"= {n / steady:.1f} records/s steady; "
        f"{cpu / n * 1000:.1f} ms CPU per record (this process and its pool, "
        f"the pool's start included); steady, ms CPU per record: pool {pool / n * 1000:.2f}, "
        f"this process {mine / n * 1000:.2f}, SeaweedFS {store / n * 1000:.2f}"
    )
    return summary


def _pool_pids() -> list[int]:
    """This process's worker pool (spawned children; the stack's servers are children too)."""
    return [p for p in _children() if b"multiprocessing" in _cmdline(p)]


def _store_pids(settings: Settings) -> list[int]:
    where = str(settings.seaweedfs_dir).encode()
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and where in _cmdline(int(p))]


def _children() -> list[int]:
    me, out = os.getpid(), []
    for p in os.listdir("/proc"):
        if p.isdigit() and _stat(int(p))[1:2] == [str(me)]:
            out.append(int(p))
    return out


def _stat(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the command: state, ppid, ...; [] when gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _cpu_of(pids: list[int]) -> float:
    """User + system CPU seconds of ``pids`` (those still running)."""
    tick = os.sysconf("SC_CLK_TCK")
    return sum((int(f[11]) + int(f[12])) / tick for f in map(_stat, pids) if f)


def _timed(label: str, fn: Any) -> tuple[Summary, float]:
    begin = time.perf_counter()
    summary = fn()
    wall = time.perf_counter() - begin
    print(f"{label}: {summary.verified} records, {summary.status.value}, {wall:.1f} s")
    return summary, wall


def _cpu_seconds() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def per_check_cpu(settings: Settings, sample: int) -> None:
    """The side-by-side CPU table (bench.verify_cpu) on ``sample`` catalogued records."""
    catalog, _ = open_catalog(settings.catalog_dir)
    if catalog is None:
        return
    rows = list(catalog_rows(catalog.rows()))[:sample]
    vsettings = VerificationSettings(workers=1)
    signers = frozenset(catalog.signer_fingerprints())
    env = environment(settings, vsettings, HoldSet(), signers)
    now = datetime.now(UTC)
    check_cpu(env, rows[:2], now, shared=True)  # imports, first-use caches
    shared = check_cpu(env, rows, now, shared=True)
    with cold():
        alone = check_cpu(env, rows, now, shared=False)
    stock = stock_cpu(env, rows)
    out = [("CPU ms per record", "now", "cold", "issue #15 (wall)")]
    for name in STAGES:
        now_ms, cold_ms = shared.get(name, 0.0) * 1000, alone.get(name, 0.0) * 1000
        out.append((name, f"{now_ms:.1f}", f"{cold_ms:.1f}", ISSUE_MS.get(name, "")))
    total, total_cold = sum(shared.values()) * 1000, sum(alone.values()) * 1000
    out.append(("all checks", f"{total:.1f}", f"{total_cold:.1f}", ""))
    print(f"\nper check, {len(rows)} records in one process (thread CPU time):")
    print(table(out))
    signature = shared.get("signature", 0.0) * 1000
    print(
        f"stock pyHanko {stock * 1000:.1f} ms per document: our signature check "
        f"{signature:.1f} ms = {stock * 1000 / signature:.2f}x stock (target >= 5x); "
        f"all our checks {total:.1f} ms"
    )


def _rss_mib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--encounters", type=int, default=500)
    parser.add_argument("--baseline", type=int, default=60, help="records for the baseline")
    parser.add_argument("--threads", type=int, default=4, help="records in flight per worker")
    parser.add_argument("--sample", type=int, default=40, help="records for the CPU table")
    args = parser.parse_args()
    with throwaway_stack(full=True) as settings:
        begin = time.perf_counter()
        archived = archive_day(settings, args.encounters)
        print(f"archived {archived} records in {time.perf_counter() - begin:.1f} s")
        full, full_s = _timed("full", lambda: verify(settings, checks="full", workers=0))
        fixity, fixity_s = _timed(
            "fixity", lambda: verify(settings, checks="fixity", workers=0, threads=args.threads)
        )
        base, base_s = _timed(
            "baseline (1 process)",
            lambda: verify(settings, checks="full", workers=1, limit=args.baseline),
        )
        per_check_cpu(settings, args.sample)
        print(f"load: {os.getloadavg()[0]:.1f} (1 min average, {os.cpu_count()} cores)")
    stages = [("stage (seconds, summed over workers)", "full", "fixity")]
    names = sorted(set(full.stage_seconds()) | set(fixity.stage_seconds()))
    for name in names:
        f, x = full.stage_seconds().get(name, 0.0), fixity.stage_seconds().get(name, 0.0)
        stages.append((name, f"{f:.2f}", f"{x:.2f}"))
    print()
    print(table(stages))
    rows = [("", "records", "seconds", "records/s", "target")]
    rows.append(
        (
            "full",
            str(full.verified),
            f"{full_s:.1f}",
            f"{full.verified / full_s:.1f}",
            ">= 50",
        )
    )
    rows.append(
        (
            "fixity only",
            str(fixity.verified),
            f"{fixity_s:.1f}",
            f"{fixity.verified / fixity_s:.1f}",
            ">= 500",
        )
    )
    rows.append(
        (
            "baseline: full, 1 process",
            str(base.verified),
            f"{base_s:.1f}",
            f"{base.verified / base_s:.1f}",
            "",
        )
    )
    print()
    print(table(rows))
    print(
        f"\npeak RSS: parent {_rss_mib(resource.RUSAGE_SELF):.0f} MiB, largest worker "
        f"{_rss_mib(resource.RUSAGE_CHILDREN):.0f} MiB (includes the stack's own processes)"
    )


if __name__ == "__main__":
    main()

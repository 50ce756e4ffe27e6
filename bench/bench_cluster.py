"""The nightly run and a full verification on a Dask cluster of two worker processes vs the
process pool of two, on the same machine and the same day, alternated; then a projection for 10
workers.

Run by hand: ``python -m bench.bench_cluster [--encounters 120] [--rounds 2]``. It starts a
throwaway embedded stack (SeaweedFS + PKI/TSA service), writes one sample day, starts a Dask
scheduler and two ``dask worker`` processes (one thread each) on loopback, and runs the
``nightly-archive`` flow alternately with ``[archive] workers = 2`` (pool) and with
``[cluster] scheduler_address`` (cluster), each run into a fresh bucket and catalog so that each
archives the whole day. Then the ``verify-archive`` flow (full checks) over the last archived
bucket, alternately with ``[verification] workers = 2`` and on the cluster. Target (issue #15):
the cluster within 10 % of the pool here; on one machine Dask cannot win, the gain is on more
machines. Beside wall time, CPU seconds of the archive's own processes (the flow's, its pool's
children, the Dask scheduler and workers; not SeaweedFS or the TSA), since the machine is shared.

The projection splits a cluster run into what the flow's process does alone (collect and plan,
quarantine, catalog append, evidence: it is the one writer) and what the workers share, and
applies Amdahl's law for 10 workers. Shared resources bound it further: the TSA (timestamps for
every record at signing; one per run for evidence), the store's PUT rate, the one catalog writer.

Nothing is asserted: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import statistics
import time
from datetime import date
from pathlib import Path
from typing import Any

from bench.common import table, throwaway_stack
from infra.dask_cluster import DaskCluster
from infra.sample.generator import write_sample_export
from infra.settings import AppSettings as Settings

DAY = date(2026, 11, 22)
SERIAL = ("collect", "quarantine", "catalog", "evidence")  # wall time in the flow's process


def _environment(settings: Settings, mode: str, address: str, batch_size: int) -> None:
    """What the flow reads at its start (as a deployment would): the stack, a bucket and a
    catalog of this run's own (every run archives the whole day), two workers either way."""
    from archive.store import S3ObjectStore

    tag = secrets.token_hex(3)
    env = {
        "EMR_ARCHIVE_DATA_DIR": str(settings.data_dir),
        "EMR_ARCHIVE_S3__BUCKET": f"bench-{tag}",
        # Its own directory: the audit log and registers live beside the catalog.
        "EMR_ARCHIVE_CATALOG__CATALOG_DIR": str(settings.data_dir / f"run-{tag}" / "catalog"),
        "EMR_ARCHIVE_ARCHIVE__WORKERS": "2",
        "EMR_ARCHIVE_ARCHIVE__BATCH_SIZE": str(batch_size),
        "EMR_ARCHIVE_CLUSTER__SCHEDULER_ADDRESS": address if mode == "cluster" else "",
    }
    env.update(
        (f"EMR_ARCHIVE_STACK__{name.upper()}", str(value))
        for name, value in settings.stack.model_dump().items()
    )
    os.environ.update(env)
    bucket = settings.s3.model_copy(update={"bucket": env["EMR_ARCHIVE_S3__BUCKET"]})
    S3ObjectStore.from_settings(settings.model_copy(update={"s3": bucket})).create_locked_bucket()


def run(export: Path, cluster: DaskCluster) -> dict[str, Any]:
    # Not a patched load_settings: the flow's context travels to the Dask scheduler pickled, and
    # the scheduler must be able to rebuild whatever the flow's function refers to.
    from flows import nightly
    from flows.outcome import summary_of

    return _timed(
        cluster, lambda: summary_of(nightly.nightly_archive, since=DAY, source=str(export))
    )


def verify(settings: Settings, mode: str, address: str, cluster: DaskCluster) -> dict[str, Any]:
    """A full verification of the bucket the environment names, by the pool or the cluster."""
    from flows import verify as flow
    from flows.outcome import summary_of

    out = settings.data_dir / f"verify-{secrets.token_hex(3)}"
    os.environ.update(
        {
            "EMR_ARCHIVE_CLUSTER__SCHEDULER_ADDRESS": address if mode == "cluster" else "",
            "EMR_ARCHIVE_VERIFICATION__WORKERS": "2",
            "EMR_ARCHIVE_VERIFICATION__OUTPUT_DIR": str(out),
        }
    )
    return _timed(cluster, lambda: summary_of(flow.verify_archive, mode="full"))


def _timed(cluster: DaskCluster, call: Any) -> dict[str, Any]:
    """``call()``'s summary with its wall time, the flow process's CPU (``flow_cpu_s``) and the
    CPU of every process of ours (``cpu_s``: the flow, its pool, the Dask scheduler and workers)."""
    pids = [cluster.scheduler.pid, *cluster.workers]
    before = (time.process_time(), _children(), _cpu(pids))
    start = time.perf_counter()
    result: dict[str, Any] = call()
    result["wall_s"] = time.perf_counter() - start
    flow_cpu = time.process_time() - before[0]
    result["flow_cpu_s"] = flow_cpu
    result["cpu_s"] = flow_cpu + _children() - before[1] + _cpu(pids) - before[2]
    return result


def _children() -> float:
    """CPU of this process's ended children (the pool's processes, once joined)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cpu(pids: list[int]) -> float:
    """User + system CPU seconds of running processes, from /proc (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--encounters", type=int, default=120, help="encounters on the day")
    parser.add_argument("--rounds", type=int, default=2, help="pool/cluster pairs, alternated")
    parser.add_argument("--batch-size", type=int, default=10)
    args = parser.parse_args()
    from prefect import flow

    @flow
    def warm_up() -> None:  # start Prefect's ephemeral API before timing
        return None

    with throwaway_stack(full=True) as settings:
        export = settings.exports_dir / "bench"
        sample = write_sample_export(export, encounters=args.encounters, seed=5, day=DAY)
        cluster = DaskCluster.start(settings.data_dir / "dask")
        try:
            for _ in range(2):
                cluster.add_worker()
            warm_up()
            results: dict[str, list[dict[str, Any]]] = {"pool": [], "cluster": []}
            for _ in range(args.rounds):
                for mode in ("pool", "cluster"):
                    _environment(settings, mode, cluster.address, args.batch_size)
                    results[mode].append(run(export, cluster))
                    last = results[mode][-1]
                    print(f"{mode}: {last['archived']} in {last['wall_s']:.1f} s", flush=True)
            checked: dict[str, list[dict[str, Any]]] = {"pool": [], "cluster": []}
            for _ in range(args.rounds):  # the last bucket archived, verified both ways
                for mode in ("pool", "cluster"):
                    checked[mode].append(verify(settings, mode, cluster.address, cluster))
                    last = checked[mode][-1]
                    print(f"verify {mode}: {last['verified']} in {last['wall_s']:.1f} s")
        finally:
            cluster.stop()
    print(f"\nsample: {len(sample.in_window)} encounters on {DAY}, batch size {args.batch_size}")
    _report(results)
    _report_verification(checked)


def _report(results: dict[str, list[dict[str, Any]]]) -> None:
    rows = [("nightly", "runs", "records", "median wall s", "records/s", "CPU s", "failed")]
    rates = {}
    for mode, runs in results.items():
        wall = statistics.median(r["wall_s"] for r in runs)
        cpu = statistics.median(r["cpu_s"] for r in runs)
        done = runs[0]["archived"] + runs[0]["adopted"]
        rates[mode] = done / wall
        failed = str(sum(r["failed_total"] for r in runs))
        rate = f"{rates[mode]:.2f}"
        rows.append((mode, str(len(runs)), str(done), f"{wall:.1f}", rate, f"{cpu:.1f}", failed))
    print(table(rows))
    print(f"\ncluster / pool throughput: {rates['cluster'] / rates['pool'] * 100:.0f} %")
    best = min(results["cluster"], key=lambda r: r["wall_s"])
    stages = best["stage_seconds"]
    serial = sum(stages.get(s, 0.0) for s in SERIAL)
    done = best["archived"] + best["adopted"]
    parallel = max(0.0, best["wall_s"] - serial)  # both workers busy, plus orchestration
    per_worker = done / (parallel * 2) if parallel else float("nan")
    ten = done / (serial + parallel * 2 / 10)
    split = [("cluster run, fastest", "seconds", "note")]
    split += [(s, f"{stages.get(s, 0.0):.2f}", "flow's process (one writer)") for s in SERIAL]
    for s in ("reread", "render", "sign", "seal_store"):
        split.append((s, f"{stages.get(s, 0.0):.2f}", "summed over workers"))
    split.append(("wall", f"{best['wall_s']:.2f}", f"{done} records"))
    print()
    print(table(split))
    print(
        f"\nper worker process: {per_worker:.2f} records/s; flow-side serial part "
        f"{serial:.1f} s of {best['wall_s']:.1f} s"
        f"\nprojected, 10 worker processes on 10 cores elsewhere: {ten:.1f} records/s for this "
        f"day (Amdahl: {serial:.1f} s serial + {parallel * 2:.1f} s / 10), at most "
        f"{done / serial if serial else float('nan'):.0f} records/s with unlimited workers;"
        "\nfurther bounded by the TSA (timestamps for every record at signing), the store's PUT "
        "rate and the one catalog writer."
    )


def _report_verification(results: dict[str, list[dict[str, Any]]]) -> None:
    rows = [("verify, full", "runs", "records", "median wall s", "records/s", "CPU s", "status")]
    rates = {}
    for mode, runs in results.items():
        wall = statistics.median(r["wall_s"] for r in runs)
        cpu = statistics.median(r["cpu_s"] for r in runs)
        done = runs[0]["verified"]
        rates[mode] = done / wall
        status = ",".join(sorted({r["status"] for r in runs}))
        rate = f"{rates[mode]:.2f}"
        rows.append((mode, str(len(runs)), str(done), f"{wall:.1f}", rate, f"{cpu:.1f}", status))
    print()
    print(table(rows))
    print(f"\ncluster / pool throughput: {rates['cluster'] / rates['pool'] * 100:.0f} %")
    best = min(results["cluster"], key=lambda r: r["wall_s"])
    done = best["verified"]
    # The flow's own process (selection, inventory, chain and replica checks, the log, the
    # reports): its CPU stands for the serial part; the rest of the wall is both workers busy.
    serial = best["flow_cpu_s"]
    parallel = max(0.0, best["wall_s"] - serial)
    per_worker = done / (parallel * 2) if parallel else float("nan")
    ten = done / (serial + parallel * 2 / 10)
    worker_cpu = (best["cpu_s"] - serial) / done if done else float("nan")
    print(
        f"\nper worker process: {per_worker:.2f} records/s ({worker_cpu * 1000:.0f} ms CPU per "
        f"record on the workers); flow-side serial part {serial:.1f} s of {best['wall_s']:.1f} s"
        f"\nprojected, 10 worker processes elsewhere: {ten:.1f} records/s (Amdahl), at most "
        f"{done / serial if serial else float('nan'):.0f} records/s with unlimited workers;"
        "\nfurther bounded by the store's GET rate (each record and its evidence read) and the "
        "one process writing the log and reports; no TSA call."
    )


if __name__ == "__main__":
    main()

"""The nightly run on a Dask cluster of two worker processes vs the process pool of two, on the
same machine and the same day, alternated; then a projection for 10 workers.

Run by hand: ``python -m bench.bench_cluster [--encounters 120] [--rounds 2]``. It starts a
throwaway embedded stack (SeaweedFS + PKI/TSA service), writes one sample day, starts a Dask
scheduler and two ``dask worker`` processes (one thread each) on loopback, and runs the
``nightly-archive`` flow alternately with ``[archive] workers = 2`` (pool) and with
``[cluster] scheduler_address`` (cluster), each run into a fresh bucket and catalog so that each
archives the whole day. Target (issue #15): the cluster within 10 % of the pool here; on one
machine Dask cannot win, the gain is on more machines.

The projection splits a cluster run into what the flow's process does alone (collect and plan,
quarantine, catalog append, evidence: it is the one writer) and what the workers share, and
applies Amdahl's law for 10 workers. Shared resources bound it further: the TSA (timestamps for
every record at signing; one per run for evidence), the store's PUT rate, the one catalog writer.

Nothing is asserted: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import os
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


def run(export: Path) -> dict[str, Any]:
    # Not a patched load_settings: the flow's context travels to the Dask scheduler pickled, and
    # the scheduler must be able to rebuild whatever the flow's function refers to.
    from flows import nightly
    from flows.outcome import summary_of

    start = time.perf_counter()
    result = summary_of(nightly.nightly_archive, since=DAY, source=str(export))
    result["wall_s"] = time.perf_counter() - start
    return result


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
                    results[mode].append(run(export))
                    last = results[mode][-1]
                    print(f"{mode}: {last['archived']} in {last['wall_s']:.1f} s", flush=True)
        finally:
            cluster.stop()
    print(f"\nsample: {len(sample.in_window)} encounters on {DAY}, batch size {args.batch_size}")
    _report(results)


def _report(results: dict[str, list[dict[str, Any]]]) -> None:
    rows = [("mode", "runs", "records", "median wall s", "records/s", "failed")]
    rates = {}
    for mode, runs in results.items():
        wall = statistics.median(r["wall_s"] for r in runs)
        done = runs[0]["archived"] + runs[0]["adopted"]
        rates[mode] = done / wall
        failed = str(sum(r["failed_total"] for r in runs))
        rows.append((mode, str(len(runs)), str(done), f"{wall:.1f}", f"{rates[mode]:.2f}", failed))
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


if __name__ == "__main__":
    main()

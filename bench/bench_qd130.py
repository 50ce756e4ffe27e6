"""QĐ 130 collection speed and memory on a big day file: encounters/s, MB/s, peak RSS, stages.

Run by hand: ``python -m bench.bench_qd130 [--encounters 69000] [--save FILE] [--baseline FILE]``.
It generates one synthetic day (``infra.sample.qd130``, no planted faults; every 11th HOSO in a
file of its own signed by a development facility, the rest in one ``GIAMDINHHS`` day file; about
7.2 kB per HOSO, so 69,000 make about 500 MB) under ``var/bench/qd130-<n>`` unless it is there
already, then collects it in a fresh child process (so peak RSS is the collector's, not the
generator's) through :func:`archive.sources.qd130.collect`, exactly as the nightly run does.

Stages: pass 1 (stream every file, index the window's HOSO: the XML1 decode of each HOSO and
the facility signature checks; one HOSO in 11 is a signed file of its own) and pass 2 (each
HOSO read back, every table decoded, parsed and checked; its FHIR mapping for the page is built
later, in the render worker, and is not counted here), both on
``--workers`` processes (default: the cores; 1 = in-process, as small runs do). ``--save``
writes the figures as JSON; ``--baseline`` prints a saved run beside this one (e.g. the
measurement before an optimisation). ``cpu_seconds`` is the collector's and its workers' CPU
time, so ``enc_per_cpu_s`` is what one core of its own would do on this shared machine; peak
RSS is the collector's, the largest worker's, and the sum of the collector and every worker
(what the target counts). Target (issue #14): >= 2,000 encounters/s and peak RSS < 200 MB on a
500 MB day.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

# Imports stay light at the top: a spawned pool worker imports this module again (as
# __mp_main__), and bench.common's (infra's settings, ports) added ~28 MB to every worker's RSS.
DAY = date(2025, 3, 10)
TZ = "Asia/Ho_Chi_Minh"


def _generate(directory: Path, encounters: int) -> None:
    from infra.sample.qd130 import write_qd130_export
    from infra.sample.qd130_signing import dev_facility

    facility = dev_facility(directory.parent / "qd130-facility")
    staging = directory.with_name(directory.name + ".partial")
    begin = time.perf_counter()
    summary = write_qd130_export(
        staging, encounters=encounters, seed=1, day=DAY, tz=TZ, bad=False, facility=facility
    )
    staging.rename(directory)
    took = time.perf_counter() - begin
    print(
        f"generated {encounters:,} HOSO, {summary.size_bytes / 1e6:,.0f} MB in {took:,.0f} s",
        file=sys.stderr,
    )


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(directory: Path, workers: int) -> dict[str, Any]:
    """Collect ``directory`` once with ``workers`` processes; runs in its own process."""
    from archive.sources import EncounterBundle, Window
    from archive.sources.qd130.collect import collect

    size = sum(p.stat().st_size for p in directory.glob("*.xml"))
    window = Window.for_day(DAY, TZ)
    start_rss = _rss_mb()
    pass1_end: list[float] = []
    cpu_begin = _cpu()
    begin = time.perf_counter()
    bundles = entries = 0
    for item in collect(
        directory,
        window=window,
        workers=workers,
        on_selected=lambda _n: pass1_end.append(time.perf_counter()),
    ):
        if isinstance(item, EncounterBundle):
            bundles += 1
        else:
            entries += 1
    total = time.perf_counter() - begin
    cpu = _cpu() - cpu_begin  # the workers' CPU is counted once the pool has shut down
    pass1 = pass1_end[0] - begin
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "workers": workers,
        "encounters": bundles,
        "quarantined": entries,
        "bytes": size,
        "seconds": total,
        "enc_per_s": bundles / total,
        "cpu_seconds": cpu,
        "enc_per_cpu_s": bundles / cpu,
        "mb_per_s": size / 1e6 / total,
        "peak_rss_mb": _rss_mb(),
        "worker_peak_rss_mb": children if workers > 1 else 0.0,
        "peak_rss_all_mb": _rss_mb() + (workers * children if workers > 1 else 0.0),
        "rss_before_mb": start_rss,
        "pass 1 index": pass1,
        "pass 2 build": total - pass1,
    }


def _cpu() -> float:
    """CPU seconds of this process and its waited-for children (the pool's workers)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _rows(result: dict[str, Any], base: dict[str, Any] | None) -> list[tuple[str, ...]]:
    def fmt(key: str, r: dict[str, Any]) -> str:
        value = r[key]
        return f"{value:,.2f}" if isinstance(value, float) else f"{value:,}"

    keys = ["workers", "encounters", "bytes", "seconds", "enc_per_s", "mb_per_s"]
    keys += ["cpu_seconds", "enc_per_cpu_s", "peak_rss_mb", "worker_peak_rss_mb"]
    keys += ["peak_rss_all_mb", "rss_before_mb", "pass 1 index", "pass 2 build"]
    keys = [k for k in keys if k in result]
    return [
        (k, *([fmt(k, base) if k in base else "-"] if base else []), fmt(k, result)) for k in keys
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encounters", type=int, default=69_000)
    parser.add_argument("--dir", type=Path, default=None, help="day to collect (generated)")
    parser.add_argument("--save", type=Path, default=None, help="write the figures as JSON")
    parser.add_argument("--baseline", type=Path, default=None, help="a --save file to compare")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="processes (default: cores)"
    )
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(_child(args.child, args.workers)))
        return
    directory = args.dir or Path("var/bench") / f"qd130-{args.encounters}"
    if not directory.is_dir():
        _generate(directory, args.encounters)
    child = ["--child", str(directory), "--workers", str(args.workers)]
    done = subprocess.run(
        [sys.executable, "-m", "bench.bench_qd130", *child],
        check=True,
        capture_output=True,
        text=True,
    )
    from bench.common import table  # not at the top: see below

    result = json.loads(done.stdout.strip().splitlines()[-1])
    base = json.loads(args.baseline.read_text()) if args.baseline else None
    head = ("", *(["baseline"] if base else []), "this run")
    print(table([head, *_rows(result, base)]))
    target = result["enc_per_s"] >= 2000 and result["peak_rss_all_mb"] < 200
    print(f"target >= 2,000 enc/s and < 200 MB peak RSS: {'met' if target else 'NOT met'}")
    if args.save:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        args.save.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

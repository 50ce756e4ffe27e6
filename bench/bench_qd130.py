"""QĐ 130 collection speed and memory on a big day file: encounters/s, MB/s, peak RSS, stages.

Run by hand: ``python -m bench.bench_qd130 [--encounters 69000] [--save FILE] [--baseline FILE]``.
It generates one synthetic day (``infra.sample.qd130``, no planted faults; every 11th HOSO in a
file of its own signed by a development facility, the rest in one ``GIAMDINHHS`` day file; about
7.2 kB per HOSO, so 69,000 make about 500 MB) under ``var/bench/qd130-<n>`` unless it is there
already, then collects it in a fresh child process (so peak RSS is the collector's, not the
generator's) through :func:`archive.sources.qd130.collect`, exactly as the nightly run does.

Stages: pass 1 (stream every file, index the window's HOSO: the XML1 decode of each HOSO and
the facility signature checks; one HOSO in 11 is a signed file of its own; on a pool the day
file is read in 32 MB ranges on every worker) and pass 2 (each
HOSO read back, every table decoded, parsed and checked; its FHIR mapping for the page is built
later, in the render worker, and is not counted here), both on
``--workers`` processes (default: the cores; 1 = in-process, as small runs do). ``--save``
writes the figures as JSON; ``--baseline`` prints a saved run beside this one (e.g. the
measurement before an optimisation). ``cpu_seconds`` is the collector's and its workers' CPU
time, so ``enc_per_cpu_s`` is what one core of its own would do on this shared machine (per
pass too); peak RSS (VmHWM, sampled) is the collector's, the largest worker's, and the sum of
the collector and every worker (what the target counts). Target (issue #14): >= 2,000
encounters/s and peak RSS < 200 MB on a 500 MB day.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
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


class _Children:
    """Samples this process's children (the pool's workers) every 50 ms: each one's peak resident
    size (VmHWM, its own since it started its program) and CPU seconds, kept by pid after it
    has exited. Not ``ru_maxrss``: Linux carries that over from the process that forked it, so
    a worker (and this collector, forked by the generator) would start at its parent's peak."""

    def __init__(self) -> None:
        self.peak_kib: dict[int, int] = {}
        self.cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.sample()

    def sample(self) -> None:
        for pid in _children():
            hwm, cpu = _status_kib(pid, "VmHWM"), _cpu_of(pid)
            if hwm:
                self.peak_kib[pid] = max(self.peak_kib.get(pid, 0), hwm)
            if cpu:
                self.cpu[pid] = max(self.cpu.get(pid, 0.0), cpu)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _children() -> list[int]:
    found: list[int] = []
    for task in Path("/proc/self/task").glob("*/children"):
        try:
            found += [int(pid) for pid in task.read_text().split()]
        except OSError:
            continue
    return found


def _status_kib(pid: int | str, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_of(pid: int) -> float:
    """utime + stime of a live process, in seconds."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _self_cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime


def _child(directory: Path, workers: int) -> dict[str, Any]:
    """Collect ``directory`` once with ``workers`` processes; runs in its own process."""
    from archive.sources import EncounterBundle, Window
    from archive.sources.qd130.collect import collect

    size = sum(p.stat().st_size for p in directory.glob("*.xml"))
    window = Window.for_day(DAY, TZ)
    start_rss = _status_kib("self", "VmHWM") / 1024
    kids = _Children()
    pass1: list[tuple[float, float]] = []
    at_pass1: dict[int, float] = {}  # each process's CPU seconds when pass 1 ended
    index_rss: list[float] = []

    def selected(_n: int) -> None:
        kids.sample()
        pass1.append((time.perf_counter(), _self_cpu() + sum(kids.cpu.values())))
        at_pass1.update(kids.cpu)
        at_pass1[0] = _self_cpu()  # pid 0: the collector
        index_rss.append(_status_kib("self", "VmRSS") / 1024)

    cpu_begin = _self_cpu()
    begin = time.perf_counter()
    bundles = entries = 0
    for item in collect(directory, window=window, workers=workers, on_selected=selected):
        if isinstance(item, EncounterBundle):
            bundles += 1
        else:
            entries += 1
    total = time.perf_counter() - begin
    kids.stop()
    kids_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)  # exact once the pool has shut down
    cpu = _self_cpu() + kids_cpu.ru_utime + kids_cpu.ru_stime - cpu_begin
    pass1_at, pass1_cpu = pass1[0]
    # On idle cores a pass takes its busiest process's CPU time, or its CPU time spread over the
    # cores, whichever is longer (contention on this shared machine inflates both).
    cores = min(workers, os.cpu_count() or 1)
    busiest_1 = max(cpu - (cpu_begin if pid == 0 else 0.0) for pid, cpu in at_pass1.items())
    busiest_2 = max(
        [_self_cpu() - at_pass1[0]] + [kids.cpu[pid] - at_pass1.get(pid, 0.0) for pid in kids.cpu]
    )
    idle = max(busiest_1, (pass1_cpu - cpu_begin) / cores)
    idle += max(busiest_2, (cpu - (pass1_cpu - cpu_begin)) / cores)
    parent = _status_kib("self", "VmHWM") / 1024
    worker_peaks = sorted(kib / 1024 for kib in kids.peak_kib.values())
    return {
        "workers": workers,
        "encounters": bundles,
        "quarantined": entries,
        "bytes": size,
        "seconds": total,
        "enc_per_s": bundles / total,
        "cpu_seconds": cpu,
        "enc_per_cpu_s": bundles / cpu,
        "cpu_us_per_enc": cpu / bundles * 1e6,
        "collector_cpu": _self_cpu() - cpu_begin,  # the rest is the workers'
        "busiest_cpu_pass_1": busiest_1,
        "busiest_cpu_pass_2": busiest_2,
        "idle_projection_enc_per_s": bundles / idle,
        "mb_per_s": size / 1e6 / total,
        "peak_rss_mb": parent,
        "worker_peak_rss_mb": max(worker_peaks, default=0.0),
        "peak_rss_all_mb": parent + sum(worker_peaks),
        "rss_before_mb": start_rss,
        "rss_after_pass_1_mb": index_rss[0],
        "pass 1 index": pass1_at - begin,
        "pass 1 cpu": pass1_cpu - cpu_begin,
        "pass 2 build": total - (pass1_at - begin),
        "pass 2 cpu": cpu - (pass1_cpu - cpu_begin),
        "load": os.getloadavg()[0],  # the machine's 1-minute load at the end
    }


def _rows(result: dict[str, Any], base: dict[str, Any] | None) -> list[tuple[str, ...]]:
    def fmt(key: str, r: dict[str, Any]) -> str:
        value = r[key]
        return f"{value:,.2f}" if isinstance(value, float) else f"{value:,}"

    keys = ["workers", "encounters", "bytes", "seconds", "enc_per_s", "mb_per_s"]
    keys += ["cpu_seconds", "enc_per_cpu_s", "cpu_us_per_enc", "collector_cpu"]
    keys += ["busiest_cpu_pass_1", "busiest_cpu_pass_2", "idle_projection_enc_per_s"]
    keys += ["peak_rss_mb"]
    keys += ["worker_peak_rss_mb", "peak_rss_all_mb", "rss_before_mb", "rss_after_pass_1_mb"]
    keys += ["pass 1 index", "pass 1 cpu", "pass 2 build", "pass 2 cpu", "load"]
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

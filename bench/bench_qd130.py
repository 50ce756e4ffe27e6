"""QĐ 130 collection speed and memory on a big day file: encounters/s, MB/s, peak RSS, stages.

Run by hand: ``python -m bench.bench_qd130 [--encounters 69000] [--save FILE] [--baseline FILE]``.
It generates one synthetic day (``infra.sample.qd130``, no planted faults; every 11th HOSO in a
file of its own signed by a development facility, the rest in one ``GIAMDINHHS`` day file; about
7.2 kB per HOSO, so 69,000 make about 500 MB) under ``var/bench/qd130-<n>`` unless it is there
already, then collects it in a fresh child process (so peak RSS is the collector's, not the
generator's) through :func:`archive.sources.qd130.collect`, exactly as the nightly run does.

Stages: pass 1 (stream every file, index the window's HOSO; includes the XML1 decode of
each HOSO and checking the facility signatures, shown apart: one HOSO in 11 is a signed file
of its own), pass 2 decode + validate (``read_hoso``: every table decoded, parsed, checked),
mapping (``to_bundle``: FHIR resources for the page), and the rest of pass 2 (reading each HOSO
back by its byte range). ``--save`` writes the figures as
JSON; ``--baseline`` prints a saved run beside this one (e.g. the measurement before an
optimisation). ``enc_per_cpu_s`` divides by the process's CPU time: on a shared machine it is
what one core of its own would do. Target (issue #14): >= 2,000 encounters/s and peak RSS
< 200 MB on a 500 MB day.
"""

from __future__ import annotations

import argparse
import importlib
import json
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from bench.common import table

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


def _child(directory: Path) -> dict[str, Any]:
    """Collect ``directory`` once, timing the stages; runs in its own process."""
    from archive.sources import EncounterBundle, Window
    from archive.sources.qd130.collect import collect

    collect_module: Any = importlib.import_module("archive.sources.qd130.collect")

    spent = {"decode+validate": 0.0, "mapping": 0.0, "signatures": 0.0}

    def timed(name: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            begin = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - begin

        return wrapper

    collect_module.read_hoso = timed("decode+validate", collect_module.read_hoso)
    collect_module.to_bundle = timed("mapping", collect_module.to_bundle)
    collect_module._signature = timed("signatures", collect_module._signature)
    size = sum(p.stat().st_size for p in directory.glob("*.xml"))
    window = Window.for_day(DAY, TZ)
    start_rss = _rss_mb()
    pass1_end: list[float] = []
    cpu_begin = time.process_time()
    begin = time.perf_counter()
    bundles = entries = 0
    for item in collect(
        directory, window=window, on_selected=lambda _n: pass1_end.append(time.perf_counter())
    ):
        if isinstance(item, EncounterBundle):
            bundles += 1
        else:
            entries += 1
    total = time.perf_counter() - begin
    cpu = time.process_time() - cpu_begin
    pass1 = pass1_end[0] - begin
    return {
        "encounters": bundles,
        "quarantined": entries,
        "bytes": size,
        "seconds": total,
        "enc_per_s": bundles / total,
        "cpu_seconds": cpu,
        "enc_per_cpu_s": bundles / cpu,
        "mb_per_s": size / 1e6 / total,
        "peak_rss_mb": _rss_mb(),
        "rss_before_mb": start_rss,
        "pass 1 index": pass1,
        "  of which signatures": spent["signatures"],
        "pass 2 decode+validate": spent["decode+validate"],
        "mapping": spent["mapping"],
        "pass 2 other": total - pass1 - spent["decode+validate"] - spent["mapping"],
    }


def _rows(result: dict[str, Any], base: dict[str, Any] | None) -> list[tuple[str, ...]]:
    def fmt(key: str, r: dict[str, Any]) -> str:
        value = r[key]
        return f"{value:,.2f}" if isinstance(value, float) else f"{value:,}"

    keys = ["encounters", "bytes", "seconds", "enc_per_s", "mb_per_s", "peak_rss_mb"]
    keys += [k for k in ("cpu_seconds", "enc_per_cpu_s") if k in result and (not base or k in base)]
    keys += ["rss_before_mb", "pass 1 index", "  of which signatures"]
    keys += ["pass 2 decode+validate", "mapping", "pass 2 other"]
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
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(_child(args.child)))
        return
    directory = args.dir or Path("var/bench") / f"qd130-{args.encounters}"
    if not directory.is_dir():
        _generate(directory, args.encounters)
    done = subprocess.run(
        [sys.executable, "-m", "bench.bench_qd130", "--child", str(directory)],
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    base = json.loads(args.baseline.read_text()) if args.baseline else None
    head = ("", *(["baseline"] if base else []), "this run")
    print(table([head, *_rows(result, base)]))
    target = result["enc_per_s"] >= 2000 and result["peak_rss_mb"] < 200
    print(f"target >= 2,000 enc/s and < 200 MB peak RSS: {'met' if target else 'NOT met'}")
    if args.save:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        args.save.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""A verification run's catalog side at scale: the selection, the inventory and the replica
check's newest rows, on a synthetic catalog (``bench.catalog_gen``), before and after the on-disk
index (``verification.catalog_index``).

Run by hand: ``python -m bench.bench_verify_catalog [--rows 1000000] [--data DIR]``. Each case
runs in a fresh process (peak RSS is VmHWM) and does what ``VerificationRun.start`` does with the
catalog, less the store: the bucket listing is every catalogued version but one in a thousand,
plus a thousand orphans (listed from the catalog's columns in batches, the same for both); then
the run's batches are read through.

- old: every row a ``CatalogRow``; the selection, the verified and catalogued pairs, the listing's
  present pairs and each key's newest row in Python sets and dicts (session 6's code, below);
- new: :func:`verification.select.marked` into the index, the listing into the index, the
  comparisons read back from it; the run's batches streamed by :func:`verification.select.selected`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from archive.catalog import Catalog, reader
from archive.seal import LocalKeyring
from archive.store import RECORDS_PREFIX, ObjectVersion
from bench.catalog_gen import generate
from bench.common import table
from verification.catalog_index import CatalogIndex
from verification.inventory import compare_inventory
from verification.select import Mode, Selection, catalog_rows, marked, select, selected

TZ = "Asia/Ho_Chi_Minh"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def listing(catalog: Catalog) -> Iterator[ObjectVersion]:
    """The bucket as listed: every catalogued version but one in 1,000, and 1,000 orphans."""
    n = 0
    for t in reader.batches(catalog, columns=["object_key", "version_id"]):
        for key, version in zip(
            t.column("object_key").to_pylist(), t.column("version_id").to_pylist(), strict=True
        ):
            n += 1
            if n % 1000:
                yield ObjectVersion(key, version, 1, True, False, NOW)
    for i in range(1000):
        yield ObjectVersion(f"{RECORDS_PREFIX}orphan-{i}", "o", 1, True, False, NOW)


def old(catalog: Catalog, selection: Selection) -> tuple[int, int, int]:
    """Session 6's VerificationRun.start on the catalog: findings, newest rows, selected rows."""
    every = catalog_rows(catalog.rows())
    rows = select(every, selection, tz=TZ)
    verified = {(r.object_key, r.version_id) for r in rows}
    wanted = {(r.object_key, r.version_id) for r in every}
    keys = {k for k, _ in wanted}
    kinds, present = [0, 0], set()  # orphans, newer versions
    for v in listing(catalog):
        if not v.key.startswith(RECORDS_PREFIX):
            continue
        pair = (v.key, v.version_id)
        kinds[v.key in keys] += pair not in wanted
        present.add(pair)
    found = sum(kinds) + len(wanted - present - verified)
    newest = {r.object_key: r for r in every}  # the replica check's input
    batches = sum(len(rows[i : i + 100]) for i in range(0, len(rows), 100))
    return found, len(newest), batches


def new(catalog: Catalog, selection: Selection) -> tuple[int, int, int]:
    with CatalogIndex(newest=True) as index:
        for t, picked in marked(catalog, selection, tz=TZ):
            index.add(t, picked)
        index.add_listing(listing(catalog))
        _, findings = compare_inventory(index)
        newest = sum(1 for _ in index.newest())
    batches = sum(len(b) for b in selected(catalog, selection, tz=TZ))
    return len(findings), newest, batches


def _peak_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _case(directory: Path, path: str, mode: str) -> dict[str, Any]:
    catalog = Catalog.open(directory)
    selection = (
        Selection(mode=Mode.SAMPLE, share=0.01, seed=7)
        if mode == "sample"
        else Selection(mode=Mode.FULL)
    )
    wall, cpu = time.perf_counter(), time.process_time()
    found, newest, batches = (old if path == "old" else new)(catalog, selection)
    return {
        "wall": time.perf_counter() - wall,
        "cpu": time.process_time() - cpu,
        "peak": _peak_mib(),
        "found": found,
        "newest": newest,
        "selected": batches,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--data", type=Path, default=None, help="keep the catalog here")
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    root = args.data or Path(tempfile.mkdtemp(prefix="emr-bench-verify-catalog-"))
    directory = root / str(args.rows) / "catalog"
    if args.case is not None:  # one measurement in this fresh process
        print(json.dumps(_case(directory, *args.case.split(":"))))
        return
    try:
        if not directory.is_dir():
            keyring = LocalKeyring.open_or_create(root / "keys", kek_id="emr-archive-kek")
            generate(directory, rows=args.rows, keyring=keyring)
        out: list[tuple[str, ...]] = [
            ("mode", "path", "wall s", "CPU s", "peak MiB", "findings", "keys", "selected")
        ]
        for mode in ("full", "sample"):
            for path in ("old", "new"):
                argv = ["--rows", str(args.rows), "--data", str(root), "--case", f"{path}:{mode}"]
                cmd = [sys.executable, "-m", "bench.bench_verify_catalog", *argv]
                done = subprocess.run(cmd, check=True, capture_output=True, text=True)
                f = json.loads(done.stdout.strip().splitlines()[-1])
                figures = [f"{f[k]:.1f}" for k in ("wall", "cpu")] + [f"{f['peak']:.0f}"]
                counts = [str(f[k]) for k in ("found", "newest", "selected")]
                out.append((mode, path, *figures, *counts))
                print(" ".join(out[-1]), flush=True)
        print()
        print(table(out))
    finally:
        if args.data is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

"""The catalog at scale: archive start-up, verification selection and search on 1M and 10M rows.

Today's read path beside the new one, each operation in a fresh process (its own peak RSS).

Run by hand: ``python -m bench.bench_catalog [--sizes 1000000,10000000] [--queries 300]
[--data DIR] [--old-max 1000000]``. For each size a synthetic chained catalog is written under a
temporary directory (``bench.catalog_gen``; or reused from ``DIR/<rows>`` if there) and removed
at the end unless ``--data`` was given. Operations, each timed (wall and CPU) with its peak RSS:

- ``start``: what :class:`ArchiveRun` reads before the first record - the chain opened and
  verified, the catalogued ids (old: a set of every id; new: the look-up index, warm), the
  signers, then the data versions of a rerun's batch (500 ids of the newest manifest) and 10,000
  membership tests. ``index`` is the look-up index's first build (once per catalog).
- ``select``: verification's selection - old: every row as a ``CatalogRow``, then
  :func:`select` (the same for every mode); new: :func:`selected` from the catalog, for a 1 %
  sample, the last 7 days and full (beyond ``--old-max`` full is timed as Arrow batches).
- ``search``: :class:`SearchIndex` built from the catalog, then p50/p95 of look-ups by
  encounter, patient (pseudonym), facility + week, class + day.

The old path is run up to ``--old-max`` rows (it needs ~3 GiB per million rows to select);
beyond that its figures are extrapolated linearly from the largest size it ran, and marked so.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds

from archive.catalog import MANIFESTS_DIR, SCHEMA, Catalog, reader
from archive.catalog.lookup import LOOKUP_FILE, EncounterLookup
from archive.seal import LocalKeyring
from bench.catalog_gen import (
    CLASSES,
    FACILITIES,
    FIRST_DAY,
    PER_MANIFEST,
    encounter_id,
    generate,
    patient_id,
)
from bench.common import table
from retrieval.index import SearchIndex
from retrieval.index_seal import index_key
from verification.select import Mode, Selection, catalog_rows, select, selected

TZ = "Asia/Ho_Chi_Minh"
AGES = ("old", "new")  # today's read path, then the new one


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def _selection(mode: str, rows: int) -> Selection:
    if mode == "sample":
        return Selection(mode=Mode.SAMPLE, share=0.01, seed=42)
    if mode == "since":
        last = FIRST_DAY + timedelta(days=(rows - 1) // PER_MANIFEST)
        return Selection(mode=Mode.SINCE, since=(last - timedelta(days=7)).date())
    return Selection(mode=Mode.FULL)


def op_start(work: Path, rows: int, new: bool) -> dict[str, Any]:
    catalog, opened, _ = _timed(lambda: Catalog.open(work / "catalog"))
    newest = reader.batches(catalog, columns=["encounter_id"], seqs=[catalog.manifests[-1].seq])
    rerun = next(iter(newest)).column(0).to_pylist()[:500]
    probes = [encounter_id(random.Random(5).randrange(2 * rows)) for _ in range(10_000)]

    def start() -> int:
        if new:
            lookup = EncounterLookup.open(catalog)
            signers = catalog.signer_fingerprints()  # now a batch at a time
            versions = lookup.data_versions(rerun)
            return sum(p in lookup for p in probes) + len(signers) + len(versions)
        known = catalog.encounter_ids()
        signers = _old_signers(catalog)
        versions = catalog.data_versions(rerun)
        return sum(p in known for p in probes) + len(signers) + len(versions)

    _, wall, cpu = _timed(start)
    return {"open s": opened, "wall s": wall + opened, "cpu s": cpu, "peak MiB": _peak_mib()}


def _old_signers(catalog: Catalog) -> set[str]:
    """Catalog.signer_fingerprints as it was: the whole column as Python strings, then a set."""
    paths = [str(catalog.directory / MANIFESTS_DIR / m.name) for m in catalog.manifests]
    column = ds.dataset(paths, schema=SCHEMA).to_table(columns=["signer_cert_sha256"]).column(0)
    return set(column.to_pylist())


def op_index(work: Path, rows: int) -> dict[str, Any]:
    catalog = Catalog.open(work / "catalog")
    (work / "catalog" / LOOKUP_FILE).unlink(missing_ok=True)
    _, wall, cpu = _timed(lambda: EncounterLookup.open(catalog).close())
    size = (work / "catalog" / LOOKUP_FILE).stat().st_size / 2**20
    return {"wall s": wall, "cpu s": cpu, "peak MiB": _peak_mib(), "note": f"{size:.0f} MiB file"}


def op_select(work: Path, rows: int, new: bool, mode: str) -> dict[str, Any]:
    catalog = Catalog.open(work / "catalog")
    selection = _selection(mode, rows)

    def run() -> int:
        if mode == "arrow":
            return sum(t.num_rows for t in reader.batches(catalog))
        if new:
            return sum(len(b) for b in selected(catalog, selection, tz=TZ))
        return len(select(catalog_rows(catalog.rows()), selection, tz=TZ))

    picked, wall, cpu = _timed(run)
    return {"wall s": wall, "cpu s": cpu, "peak MiB": _peak_mib(), "note": f"{picked:,} rows"}


def op_search(work: Path, rows: int, queries: int) -> dict[str, Any]:
    catalog = Catalog.open(work / "catalog")
    keyring = LocalKeyring.open(work / "keys")
    index = SearchIndex.open(work / "index", seal_key=index_key(keyring.chain_key()))
    _, built, _ = _timed(lambda: index.sync(catalog))
    rng = random.Random(7)
    days = max(1, rows // PER_MANIFEST)

    def when() -> datetime:
        return FIRST_DAY - timedelta(days=1) + timedelta(days=rng.randrange(days))

    def week() -> Any:
        start = when()
        return index.by_facility(
            rng.choice(FACILITIES), start=start, end=start + timedelta(days=7), limit=500
        )

    def day() -> Any:
        start = when()
        return index.by_class(
            rng.choice(CLASSES), start=start, end=start + timedelta(days=1), limit=500
        )

    kinds: dict[str, Callable[[], Any]] = {
        "encounter": lambda: index.by_encounter(encounter_id(rng.randrange(rows))),
        "patient": lambda: index.by_patient(
            keyring.pseudonym(patient_id(rng.randrange(rows // 3)))
        ),
        "facility+week": week,
        "class+day": day,
    }
    out: dict[str, Any] = {"build s": built}
    for name, fn in kinds.items():
        samples, found = [], 0
        for _ in range(queries):
            begin = time.perf_counter()
            found += len(fn())
            samples.append((time.perf_counter() - begin) * 1000)
        p95 = statistics.quantiles(samples, n=20)[18]
        out[name] = (
            f"p50 {statistics.median(samples):.2f} p95 {p95:.2f} ms, {found / queries:.1f} hits"
        )
    out["peak MiB"] = _peak_mib()
    return out


def _child(argv: list[str]) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.bench_catalog", *argv]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--old-max", type=int, default=1_000_000)
    parser.add_argument("--op", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.op is not None:  # one measurement in this fresh process
        kind, _, rest = args.op.partition(":")
        ops: dict[str, Callable[[], dict[str, Any]]] = {
            "start": lambda: op_start(args.work, args.rows, rest == "new"),
            "index": lambda: op_index(args.work, args.rows),
            "select": lambda: op_select(args.work, args.rows, *_mode(rest)),
            "search": lambda: op_search(args.work, args.rows, args.queries),
        }
        print(json.dumps(ops[kind]()))
        return
    root = args.data or Path(tempfile.mkdtemp(prefix="emr-bench-catalog-"))
    try:
        _run(root, [int(s) for s in args.sizes.split(",")], args.queries, args.old_max)
    finally:
        if args.data is None:
            shutil.rmtree(root, ignore_errors=True)


def _mode(rest: str) -> tuple[bool, str]:
    age, _, mode = rest.partition(":")
    return age == "new", mode


def _run(root: Path, sizes: list[int], queries: int, old_max: int) -> None:
    results: list[tuple[str, ...]] = [
        ("rows", "operation", "path", "wall s", "CPU s", "peak MiB", "")
    ]
    old: dict[str, tuple[int, dict[str, Any]]] = {}  # largest measured old figures, per operation
    for rows in sizes:
        work = root / str(rows)
        if not (work / "catalog").is_dir():
            keyring = LocalKeyring.open_or_create(work / "keys", kek_id="emr-archive-kek")
            gen = functools.partial(generate, work / "catalog", rows=rows, keyring=keyring)
            _, wall, cpu = _timed(gen)
            print(f"{rows:,} rows written in {wall:.0f} s ({cpu:.0f} s CPU)", flush=True)
        base = ["--work", str(work), "--rows", str(rows), "--queries", str(queries)]
        # The old selection makes every row a CatalogRow before choosing, whatever the mode:
        # measured once. Full as CatalogRows costs ~30 us a row on top (measured up to
        # --old-max); beyond, the stream is timed as Arrow batches (what a verifier reads).
        full = "select:new:full" if rows <= old_max else "select:new:arrow"
        plan = [
            ("index", "index", "new"),
            ("start", "start:old", "old"),
            ("start", "start:new", "new"),
            ("select (any mode)", "select:old:sample", "old"),
            ("select sample 1%", "select:new:sample", "new"),
            ("select since 7 d", "select:new:since", "new"),
            ("select full", full, "new"),
            ("search", "search", "index"),
        ]
        for operation, op, path in plan:
            if path == "old" and rows > old_max:
                if operation not in old:  # no smaller size in this run to extrapolate from
                    results.append(_line(rows, operation, "old", {}, "not run (> --old-max)"))
                    continue
                size, figures = old[operation]
                scale = rows / size
                figures = {k: v * scale for k, v in figures.items() if isinstance(v, float)}
                results.append(_line(rows, operation, "old", figures, "extrapolated x rows"))
                continue
            figures = _child(["--op", op, *base])
            if path == "old":
                old[operation] = (rows, figures)
            if operation == "search":
                for name in ("encounter", "patient", "facility+week", "class+day"):
                    results.append(
                        (f"{rows:,}", f"search {name}", "index", "", "", "", figures[name])
                    )
                figures["note"] = f"index built in {figures['build s']:.0f} s"
            results.append(_line(rows, operation, path, figures, str(figures.get("note", ""))))
            print(results[-1], flush=True)
    print(table(results))


def _line(rows: int, operation: str, path: str, f: dict[str, Any], note: str) -> tuple[str, ...]:
    def num(key: str) -> str:
        return f"{f[key]:.1f}" if key in f else "-"

    return (f"{rows:,}", operation, path, num("wall s"), num("cpu s"), num("peak MiB"), note)


if __name__ == "__main__":
    main()

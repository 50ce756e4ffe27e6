"""What grows with the catalog on the export and append paths: old against new, side by side.

- export: the catalog rows behind one export's index hits - before, a scan of every manifest per
  hit (``Catalog.find``); now the manifests the look-up index names (``catalogued_rows``);
- append: the duplicate (key, version) check of one nightly manifest's rows - before, every
  (key, version) of the catalog as Python tuples; now only the catalogued rows with the batch's
  keys, streamed.

Each operation runs in its own process (peak RSS is the process's). CPU seconds are reported
beside wall time: the machine is shared. Write a catalog first with :mod:`bench.catalog_gen`::

    python -m bench.bench_catalog_growth --work /tmp/w1m --exports 20
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from archive.catalog import Catalog, reader
from archive.catalog.lookup import LOOKUP_FILE, EncounterLookup
from archive.core.errors import CatalogError
from bench.catalog_gen import PER_MANIFEST, encounter_id
from retrieval.service.export import catalogued_rows


def _hits(catalog: Catalog, n: int) -> list[dict[str, Any]]:
    """``n`` random index hits (pointers to catalog rows), read once up front."""
    total = sum(m.row_count for m in catalog.manifests)
    ids = [encounter_id(i) for i in random.Random(7).sample(range(total), n)]
    keep = ["encounter_id", "object_key", "version_id"]
    where = pc.field("encounter_id").isin(ids)
    return [r for t in reader.batches(catalog, columns=keep, where=where) for r in t.to_pylist()]


def _old_full(catalog: Catalog, hit: dict[str, Any]) -> dict[str, Any]:
    for row in catalog.find(encounter_id=hit["encounter_id"]).to_pylist():
        if (row["object_key"], row["version_id"]) == (hit["object_key"], hit["version_id"]):
            return dict(row)
    raise AssertionError("not found")


def _old_reject(catalog: Catalog, table: Any) -> None:
    """Catalog._reject_catalogued as it was."""
    scanned = catalog._scan(columns=["object_key", "version_id"])
    seen = set(
        zip(scanned["object_key"].to_pylist(), scanned["version_id"].to_pylist(), strict=True)
    )
    for pair in zip(table["object_key"].to_pylist(), table["version_id"].to_pylist(), strict=True):
        if pair in seen:
            raise CatalogError("duplicate")
        seen.add(pair)


def op(work: Path, name: str, exports: int) -> dict[str, Any]:
    catalog = Catalog.open(work / "catalog")
    if name == "lookup-build":
        (work / "catalog" / LOOKUP_FILE).unlink(missing_ok=True)
        run: Any = lambda: EncounterLookup.open(catalog).close()  # noqa: E731
        count = 1
    elif name.startswith("export"):
        hits = _hits(catalog, exports)
        if name == "export-new":
            EncounterLookup.open(catalog).close()  # built beforehand: what an archive run keeps
            run = lambda: [catalogued_rows(catalog, [h]) for h in hits]  # noqa: E731
        else:
            run = lambda: [_old_full(catalog, h) for h in hits]  # noqa: E731
        count = len(hits)
    else:  # a nightly manifest's worth of new rows, keys never catalogued
        newest = next(reader.batches(catalog, seqs=[catalog.manifests[-1].seq]))
        table = newest.set_column(
            newest.schema.get_field_index("object_key"),
            "object_key",
            pa.array([f"records/new/{i:08d}" for i in range(newest.num_rows)]),
        )
        check = _old_reject if name == "append-old" else type(catalog)._reject_catalogued
        run = lambda: check(catalog, table)  # noqa: E731
        count = 1
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "op": name,
        "per op wall ms": 1000 * wall / count,
        "per op cpu ms": 1000 * cpu / count,
        "peak MiB": round(peak),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--exports", type=int, default=20)
    parser.add_argument("--ops", default="append-old,append-new,lookup-build,export-old,export-new")
    parser.add_argument("--op", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.op:
        print(json.dumps(op(args.work, args.op, args.exports)))
        return
    rows = sum(m.row_count for m in Catalog.open(args.work / "catalog").manifests)
    print(f"catalog: {rows:,} rows ({rows // PER_MANIFEST} manifests)")
    for name in args.ops.split(","):
        cmd = [sys.executable, "-m", "bench.bench_catalog_growth", "--work", str(args.work)]
        out = subprocess.run(
            [*cmd, "--exports", str(args.exports), "--op", name],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        result = json.loads(out)
        print(
            " ".join(
                f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()
            )
        )


if __name__ == "__main__":
    main()

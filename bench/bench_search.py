"""Catalog search latency on generated catalogs of 10k, 100k and 1M rows, and memory.

Run by hand: ``python -m bench.bench_search [--sizes 10000,100000,1000000] [--queries 300]``.
For each size it writes a real hash-chained catalog (100k rows per manifest, locked copies in a
throwaway SeaweedFS, as in production), builds the SQLite search index from it,
then times the look-ups the portal and the CLI make - by encounter id, by patient (pseudonym at
query time), by facility + one week of discharges, by retention class + one day - through
:class:`retrieval.index.SearchIndex`. p50/p95 over ``--queries`` random look-ups; peak RSS of the
query phase alone: how far the high-water mark rose above the RSS before each query type
(``/proc/self/clear_refs`` resets it), beside the process RSS (mostly the generator's leftovers).
Target (issue #6): encounter and patient look-ups < 300 ms p95 on 1M rows, bounded memory.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from archive.audit import AuditLog
from archive.catalog import Catalog, CatalogRow, manifest_retain_until
from archive.seal import LocalKeyring
from archive.store import ObjectStore, S3ObjectStore
from bench.common import table, throwaway_stack
from infra.settings import load_app_settings as load_settings
from retention import Register
from retrieval.access import AccessRegister, Principal, Role, TokenService, UserStore
from retrieval.index import SearchIndex
from retrieval.index_seal import index_key
from retrieval.service import Query, Retrieval
from verification.config import HoldSet
from verification.evidence import Environment

FACILITIES = ("79001", "79002", "79010", "01001", "48003")
CLASSES = ("standard-10y", "surgery-15y", "mental-15y", "death-20y", "occupational-30y")
START = datetime(2016, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 23, tzinfo=UTC)
PER_MANIFEST = 100_000


def generate_catalog(
    directory: Path, *, rows: int, keyring: LocalKeyring, store: ObjectStore, seed: int = 1
) -> tuple[Catalog, list[str]]:
    """A catalog of ``rows`` rows (about 3 encounters per patient); returns it and patient ids."""
    rng = random.Random(seed)
    catalog = Catalog.open(directory, create=True)
    patients = max(1, rows // 3)
    pseudonyms = [keyring.pseudonym(f"BN{i:09d}") for i in range(patients)]
    now = datetime.now(UTC)
    for first in range(0, rows, PER_MANIFEST):
        run_id = f"run-{first // PER_MANIFEST:04d}"
        batch = [
            _row(i, rng, pseudonyms[rng.randrange(patients)], run_id)
            for i in range(first, min(rows, first + PER_MANIFEST))
        ]
        catalog.append(
            batch,
            run_id=run_id,
            now=now,
            store=store,
            retain_until=manifest_retain_until(now, years=1),
        )
    return catalog, [f"BN{i:09d}" for i in range(patients)]


def _row(i: int, rng: random.Random, pseudonym: str, run_id: str) -> CatalogRow:
    admitted = START + timedelta(minutes=rng.randrange(10 * 365 * 24 * 60))
    h = f"{i:064x}"
    return CatalogRow(
        encounter_id=f"ENC{i:09d}",
        patient_pseudonym=pseudonym,
        facility=FACILITIES[i % len(FACILITIES)],
        admitted_at=admitted,
        discharged_at=admitted + timedelta(days=rng.randrange(1, 15)),
        retention_class=CLASSES[i % len(CLASSES)],
        retain_until=admitted + timedelta(days=3650),
        bucket="emr-archive",
        object_key=f"records/{h[:40]}",
        version_id=f"v{i}",
        pdf_sha256=h,
        data_sha256=h,
        sealed_sha256=h,
        sealed_size=100_000,
        signer_cert_sha256=h,
        signed_at=admitted + timedelta(days=16),
        kek_id="emr-archive-kek",
        kek_version=1,
        format_version=1,
        run_id=run_id,
    )


def _service(
    work: Path, catalog: Catalog, index: SearchIndex, keyring: LocalKeyring, store: ObjectStore
) -> Retrieval:
    settings = load_settings(data_dir=work)

    def no_export(holds: HoldSet) -> Environment:
        raise AssertionError("the bench does not export")

    service = Retrieval(
        settings=settings,
        store=store,
        catalog=catalog,
        index=index,
        register=Register.for_settings(settings, store),
        access=AccessRegister.for_settings(settings, store),
        users=UserStore(work / "users.json"),
        tokens=TokenService(b"b" * 32),
        audit=AuditLog.for_settings(settings, store),
        keyring=keyring,
        env_factory=no_export,
    )
    service.refresh()
    return service


def _rss_reset() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _time(fn: Callable[[], Any], n: int) -> tuple[float, float, float, int]:
    """p50 and p95 in ms, how much the peak RSS grew while querying (MiB), results found."""
    _rss_reset()
    before = _status_mib("VmRSS")
    samples, found = [], 0
    for _ in range(n):
        begin = time.perf_counter()
        found += len(fn())
        samples.append((time.perf_counter() - begin) * 1000)
    p95 = statistics.quantiles(samples, n=20)[18]
    return statistics.median(samples), p95, _status_mib("VmHWM") - before, found


def bench_size(rows: int, queries: int, work: Path, store: ObjectStore) -> list[list[str]]:
    keyring = LocalKeyring.create(work / "keys", kek_id="emr-archive-kek")
    begin = time.perf_counter()
    catalog, patients = generate_catalog(work / "catalog", rows=rows, keyring=keyring, store=store)
    generated = time.perf_counter() - begin
    begin = time.perf_counter()
    catalog = Catalog.open(catalog.directory)
    opened = time.perf_counter() - begin
    begin = time.perf_counter()
    index = SearchIndex.open(work / "index", seal_key=index_key(keyring.chain_key()))
    index.sync(catalog)
    indexed = time.perf_counter() - begin
    size = (work / "index" / "search.sqlite").stat().st_size / 2**20
    print(
        f"{rows:>9} rows: catalog written in {generated:.1f} s, opened (chain verified) in "
        f"{opened:.2f} s; index built in {indexed:.1f} s ({size:.0f} MiB on disk)"
    )
    service = _service(work, catalog, index, keyring, store)
    officer = Principal("ro.bench", Role.RECORDS_OFFICER)
    rng = random.Random(7)

    def week() -> Any:
        start = START + timedelta(days=rng.randrange(3600))
        return index.by_facility(
            rng.choice(FACILITIES), start=start, end=start + timedelta(days=7), limit=500
        )

    def day() -> Any:
        start = START + timedelta(days=rng.randrange(3600))
        return index.by_class(
            rng.choice(CLASSES), start=start, end=start + timedelta(days=1), limit=500
        )

    kinds: list[tuple[str, Callable[[], Any]]] = [
        ("encounter", lambda: index.by_encounter(f"ENC{rng.randrange(rows):09d}")),
        ("patient", lambda: index.by_patient(keyring.pseudonym(rng.choice(patients)))),
        ("facility+week", week),
        ("class+day", day),
        # Through the API the CLI and portal call: holds, upgrades and verification state folded
        # in, and one audit event appended, fsynced and locked (the embedded SeaweedFS) per search.
        (
            "api:encounter",
            lambda: (
                service.search(
                    officer, Query(encounter_id=f"ENC{rng.randrange(rows):09d}"), now=NOW
                ).hits
            ),
        ),
    ]
    out: list[list[str]] = []
    for name, fn in kinds:
        p50, p95, grew, found = _time(fn, queries)
        out.append(
            [
                f"{rows:,}",
                name,
                f"{p50:.2f}",
                f"{p95:.2f}",
                f"{found / queries:.1f}",
                f"{max(grew, 0.0):.1f}",
                f"{_status_mib('VmRSS'):.0f}",
            ]
        )
    index.close()
    probe = [sys.executable, "-m", "bench.bench_search", "--probe", str(work), "--one", str(rows)]
    peak = subprocess.run(probe, check=True, capture_output=True, text=True).stdout.strip()
    out.append([f"{rows:,}", "fresh process", "-", "-", "-", "-", peak])
    return out


def probe(work: Path, rows: int, queries: int) -> float:
    """Peak RSS of a fresh process that opens the index and answers encounter and patient
    look-ups: what a CLI command or a portal worker needs for searching."""
    keyring = LocalKeyring.open(work / "keys")
    index = SearchIndex.open(work / "index", seal_key=index_key(keyring.chain_key()))
    rng = random.Random(3)
    for _ in range(queries):
        index.by_encounter(f"ENC{rng.randrange(rows):09d}")
        index.by_patient(keyring.pseudonym(f"BN{rng.randrange(max(1, rows // 3)):09d}"))
    return _status_mib("VmHWM")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--probe", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe is not None:
        print(f"{probe(args.probe, args.one, args.queries):.0f}")
        return
    if args.one is not None:  # one size in a fresh process, so its peak RSS is its own
        # A real object store (SeaweedFS on loopback): manifests and audit events are locked
        # objects in production, and the API search appends one audit event per query.
        with (
            tempfile.TemporaryDirectory(prefix="emr-bench-search-") as tmp,
            throwaway_stack() as settings,
        ):
            store = S3ObjectStore.from_settings(settings)
            store.create_locked_bucket()
            print(json.dumps(bench_size(args.one, args.queries, Path(tmp), store)))
        return
    results: list[tuple[str, ...]] = [
        ("rows", "query", "p50 ms", "p95 ms", "hits/query", "RSS growth MiB", "RSS MiB")
    ]
    for rows in (int(s) for s in args.sizes.split(",")):
        argv = [
            sys.executable,
            "-m",
            "bench.bench_search",
            "--one",
            str(rows),
            "--queries",
            str(args.queries),
        ]
        done = subprocess.run(argv, check=True, capture_output=True, text=True)
        *notes, last = done.stdout.strip().splitlines()
        print("\n".join(notes), flush=True)
        results += [tuple(r) for r in json.loads(last)]
    print(table(results))


if __name__ == "__main__":
    main()

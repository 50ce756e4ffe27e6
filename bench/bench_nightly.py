"""End-to-end nightly archive throughput, with a stage breakdown, beside a naive baseline.

Run by hand: ``python -m bench.bench_nightly [--encounters 1000] [--baseline 40]``. It starts a
throwaway embedded stack (SeaweedFS + PKI service), writes a sample export, and runs:

- the product: the ``nightly-archive`` Prefect flow (batched tasks, process pool, key loaded and
  validation data fetched once per worker, fonts prepared once per process);
- a naive baseline on a subset: one Prefect task per encounter, stock pyHanko signer loading the
  PKCS#12 per document with a fresh validation context, fonts loaded per document.

With ``--replica`` every object is also written to a second SeaweedFS (synchronous dual writes;
compare with a run without it: target < 15 % slower, issue #15), and afterwards the replica site
is wiped entirely (stopped, data directory deleted, started empty) and repaired from the primary:
the repair rate in objects/s and MB/s, once per ``--repair-threads`` value in turn (``1 8 1 8``:
one object at a time beside eight in flight, alternated so the machine's load falls on both).

Nothing is asserted: the machine is shared and noisy. Targets (issue #3): >= 25 encounters/s at
B-LTA, >= 10x the naive baseline, orchestration <= 5% of wall time, peak RSS < 1 GiB; with the
evidence stage (issue #12: one tree, one TSA request, one locked record per PDF) >= 40
encounters/s overall, its share of the wall time shown. ``--baseline 0`` skips the baseline.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from bench.common import table, throwaway_stack
from infra.sample.generator import write_sample_export
from infra.settings import AppSettings as Settings

DAY = date(2026, 11, 22)


def _rss_mib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def run_product(settings: Settings, export: Path) -> dict[str, Any]:
    os.environ["EMR_ARCHIVE_DATA_DIR"] = str(settings.data_dir)
    for name, value in settings.stack.model_dump().items():
        os.environ[f"EMR_ARCHIVE_STACK__{name.upper()}"] = str(value)
    os.environ["EMR_ARCHIVE_REPLICA__ENABLED"] = str(settings.replica.enabled).lower()
    from prefect import flow

    from flows.nightly import nightly_archive
    from flows.outcome import summary_of

    @flow
    def warm_up() -> None:  # start Prefect's ephemeral API before timing (a server is always up)
        return None

    warm_up()
    start = time.perf_counter()
    result = summary_of(nightly_archive, since=DAY, source=str(export))
    result["wall_s"] = time.perf_counter() - start
    return result


def run_naive(settings: Settings, export: Path, limit: int) -> tuple[int, float]:
    """The obvious way: a task per encounter, everything loaded per document."""
    from prefect import flow, task
    from pyhanko.keys import load_cert_from_pemder
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers
    from pyhanko.sign.fields import SigSeedSubFilter
    from pyhanko.sign.timestamps import HTTPTimeStamper
    from pyhanko_certvalidator import ValidationContext

    from archive.render import Renderer
    from archive.seal import LocalKeyring, ObjectIdentity
    from archive.sources import EncounterBundle, Window, collect
    from archive.store import S3ObjectStore, deposit, record_key

    signers_dir = settings.pki_dir / "signers"
    root = load_cert_from_pemder(str(settings.pki_dir / "trust-root.pem"))  # type: ignore[no-untyped-call]
    bundles = [
        i for i in collect(export, window=Window.for_day(DAY)) if isinstance(i, EncounterBundle)
    ][:limit]

    @task
    def one(bundle: EncounterBundle) -> None:
        pdf = (
            Renderer.create()
            .render(bundle.bundle, bundle.canonical, created_at=datetime.now(UTC))
            .pdf
        )
        signer = signers.SimpleSigner.load_pkcs12(  # type: ignore[no-untyped-call]
            str(signers_dir / "hospital-signer.p12"),
            passphrase=(signers_dir / "hospital-signer.pass").read_bytes().strip(),
        )
        meta = signers.PdfSignatureMetadata(
            field_name="Signature",
            subfilter=SigSeedSubFilter.PADES,
            embed_validation_info=True,
            use_pades_lta=True,
            validation_context=ValidationContext(trust_roots=[root], allow_fetching=True),
        )
        out = signers.sign_pdf(
            IncrementalPdfFileWriter(io.BytesIO(pdf)),
            meta,
            signer=signer,
            timestamper=HTTPTimeStamper(settings.tsa_url),
        )
        keys = LocalKeyring.open(settings.keyring_dir)
        store = S3ObjectStore.from_settings(settings)
        key = record_key(
            facility=bundle.facility_code, token=keys.record_token("naive-" + bundle.encounter_id)
        )
        deposit(
            out.getvalue(),
            identity=ObjectIdentity(store.bucket, key, bundle.encounter_id),
            retain_until=datetime(2037, 1, 1, tzinfo=UTC),
            store=store,
            keys=keys,
            settings=settings.seal,
        )

    @flow
    def naive() -> None:
        for bundle in bundles:
            one(bundle)

    start = time.perf_counter()
    naive()
    return len(bundles), time.perf_counter() - start


def run_repair(settings: Settings, *, threads: int) -> tuple[str, ...]:
    """Wipe the replica site entirely, start it empty, and time the repair from the primary."""
    import shutil

    from infra import seaweed
    from infra.repair import repair_site

    seaweed.stop(settings, "replica")
    shutil.rmtree(settings.replica_dir)
    seaweed.start(settings, site="replica")
    report = repair_site(settings, site="replica", threads=threads)
    n, s = len(report.copied), report.seconds
    assert report.ok, report.refused
    return (
        f"repair --site replica --threads {threads}",
        str(n),
        f"{s:.1f}",
        f"{n / s:.1f}",
        f"{report.bytes_copied / 1e6 / s:.1f}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--encounters",
        type=int,
        default=1000,
        help="encounters finished on the day (the export holds ~25%% more)",
    )
    parser.add_argument("--baseline", type=int, default=40, help="encounters for the baseline")
    parser.add_argument("--replica", action="store_true", help="dual writes, then a repair")
    parser.add_argument(
        "--repair-threads",
        type=int,
        nargs="+",
        default=[8],
        help="with --replica: wipe and repair once per value, in turn (e.g. 1 8 1 8)",
    )
    args = parser.parse_args()
    with throwaway_stack(full=True, replica=args.replica) as settings:
        export = settings.exports_dir / "bench"
        sample = write_sample_export(
            export, encounters=int(args.encounters * 1.26), seed=5, day=DAY, bad_share=0.02
        )
        print(
            f"sample: {len(sample.in_window)} encounters finished on {DAY}, "
            f"{sample.size_bytes / 1e6:.1f} MB of NDJSON"
        )
        result = run_product(settings, export)
        parent_rss, child_rss = _rss_mib(resource.RUSAGE_SELF), _rss_mib(resource.RUSAGE_CHILDREN)
        naive_n, naive_s = run_naive(settings, export, args.baseline) if args.baseline else (0, 1.0)
        if args.replica:
            repair_rows = [run_repair(settings, threads=n) for n in args.repair_threads]

    done = result["archived"] + result["adopted"]
    wall = result["wall_s"]
    stages = result["stage_seconds"]
    accounted = result["duration_s"]
    orchestration = max(0.0, wall - accounted)
    rows = [("stage", "seconds", "note")]
    for stage in ("collect", "render", "sign", "seal_store", "quarantine", "catalog", "evidence"):
        note = "summed over workers" if stage in {"render", "sign", "seal_store"} else "wall"
        rows.append((stage, f"{stages.get(stage, 0.0):.2f}", note))
    rows.append(
        (
            "orchestration",
            f"{orchestration:.2f}",
            f"{orchestration / wall * 100:.1f}% of wall (Prefect tasks, flow, report)",
        )
    )
    evidence_s = stages.get("evidence", 0.0)
    rows.append(
        (
            "evidence share",
            f"{evidence_s / wall * 100:.1f}%",
            f"{result['evidence_written']} records, {result['evidence_timestamps']} TSA "
            f"request(s), {result['evidence_pending']} pending",
        )
    )
    rows.append(("total wall", f"{wall:.2f}", ""))
    print(table(rows))
    naive_rate = naive_n / naive_s or float("nan")
    rate = done / wall
    print()
    label = "product (nightly-archive flow)" + (", two sites" if args.replica else "")
    runs = [
        ("", "encounters", "seconds", "encounters/s"),
        (label, str(done), f"{wall:.1f}", f"{rate:.1f}"),
    ]
    if naive_n:
        runs.append(("naive baseline", str(naive_n), f"{naive_s:.1f}", f"{naive_rate:.2f}"))
    print(table(runs))
    if args.replica:
        print(
            table(
                [
                    (
                        "repair after the replica site was wiped",
                        "objects",
                        "seconds",
                        "objects/s",
                        "MB/s",
                    ),
                    *repair_rows,
                ]
            )
        )
    print(
        (f"\nspeed-up {rate / naive_rate:.1f}x; " if naive_n else "\n")
        + f"quarantined {result['quarantined_total']}, "
        f"failed {result['failed_total']}; peak RSS: flow process {parent_rss:.0f} MiB, "
        f"largest worker {child_rss:.0f} MiB"
    )


if __name__ == "__main__":
    main()

"""What evidence records and ``--renew`` add to a dossier export, side by side with the plain one.

Run by hand: ``python -m bench.bench_export_evidence [--documents 5] [--repeat 5]``. It starts a
throwaway embedded stack (SeaweedFS + PKI service with its TSA), archives a sample day (every
record gets its evidence record from the run's one timestamp), then times, in-process:

- ``export_dossier`` of ``--documents`` rows in one bag: GET + unseal, the full verification
  per document, the evidence record read from the bucket into the bag, BagIt, zip (the export
  as it is now; ``bench.bench_export`` has the portal and ``Retrieval.export`` paths);
- the same rows with ``renew`` (the CLI's ``retrieve --renew``): one more document timestamp
  per PDF from the stack's TSA, with the validation data of the previous timestamp's TSA
  (OCSP + CRLs fetched online) and of the new one;
- the two per-document parts alone: reading one evidence record (``evidence_record_for``: LIST
  + GET + unseal, what the export did not do before it carried evidence records) and renewing
  one PDF (``DocumentRenewer.renew``, sharing the export's TSA client and validation context).

Nothing is asserted: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from archive.catalog import Catalog, CatalogRow
from archive.seal import ObjectIdentity, unseal
from bench.bench_export import HEADER, Measured, archive_day, timed
from bench.common import peak_rss_mib, table, throwaway_stack
from retrieval import Retrieval, export_dossier
from retrieval.dossier import Renewer
from retrieval.evidence import evidence_record_for
from verification.config import HoldSet
from verification.evidence import Environment

PATH = "service (in-process)"


def measure(
    env: Environment,
    renew: Renewer,
    rows: list[CatalogRow],
    *,
    documents: int,
    repeat: int,
    out: Path,
) -> list[Measured]:
    def bag(i: int, renewer: Renewer | None) -> list[Path]:
        chosen = rows[i * documents : (i + 1) * documents]
        result = export_dossier(
            chosen,
            env=env,
            out_dir=out,
            label=f"bench-{i}-{'renew' if renewer else 'plain'}",
            now=datetime.now(UTC),
            context={"exported_by": "bench"},
            renew=renewer,
        )
        if any(d.evidence != "exported" for d in result.documents):
            raise RuntimeError("a record without its evidence record: the bench needs them all")
        return [result.path]

    got = []
    seconds, rss = timed(lambda i: bag(i, None), repeat)
    got.append(Measured(PATH, f"export_dossier, {documents} rows", documents, seconds, rss))
    seconds, rss = timed(lambda i: bag(i, renew), repeat)
    got.append(Measured(PATH, f"export_dossier, {documents} rows, renew", documents, seconds, rss))

    def evidence(i: int) -> list[Path]:
        if evidence_record_for(env, rows[i]) is None:
            raise RuntimeError("a record without its evidence record")
        return []

    seconds, rss = timed(evidence, min(len(rows), repeat * documents))
    got.append(Measured(PATH, "evidence_record_for, 1 record", 1, seconds, rss))
    pdf = _unsealed_pdf(env, rows[0])

    def renewal(_: int) -> list[Path]:
        renew(pdf)
        return []

    seconds, rss = timed(renewal, repeat)
    got.append(Measured(PATH, "DocumentRenewer.renew, 1 PDF", 1, seconds, rss))
    return got


def _unsealed_pdf(env: Environment, row: CatalogRow) -> bytes:
    identity = ObjectIdentity(row.bucket, row.object_key, row.encounter_id)
    sealed = env.store.get(row.object_key, version_id=row.version_id)
    return unseal(sealed, identity=identity, keys=env.keys, settings=env.seal)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--documents", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    documents, repeat = args.documents, args.repeat
    encounters = max(20, round(repeat * documents / 0.7) + 5)
    with throwaway_stack(full=True) as settings, tempfile.TemporaryDirectory() as tmp:
        begin = time.perf_counter()
        archived, _ = archive_day(settings, encounters, documents=1, patients=0)
        print(f"archived {archived} records in {time.perf_counter() - begin:.1f} s")
        rows = [
            CatalogRow.from_dict(x) for x in Catalog.open(settings.catalog_dir).rows().to_pylist()
        ]
        repeat = min(repeat, len(rows) // documents)
        r = Retrieval.open(settings)
        try:
            env = r._env_factory(HoldSet.of(r.register.held_encounters()))
            with r.renewer() as renewer:
                measured = measure(
                    env, renewer.renew, rows, documents=documents, repeat=repeat, out=Path(tmp)
                )
        finally:
            r.index.close()
    print()
    print(table([HEADER, *(m.row() for m in measured)]))
    print(f"\npeak RSS of the bench process over the whole run: {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()

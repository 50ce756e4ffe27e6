"""Time from request to finished export for one dossier of 5 documents, on the real stack.

Run by hand: ``python -m bench.bench_export [--documents 5] [--repeat 5]``. It starts a throwaway
embedded stack (SeaweedFS + PKI service), archives a sample day, then exports dossiers of
``--documents`` records through :meth:`retrieval.service.Retrieval.export` as a records officer:
authorise, index refresh, GET + unseal, the full verification checks per document (signature
B-LTA offline, PDF/A, embedded data, lock), BagIt bag with sha256 + sha512 manifests, zip, audit
event. Prints the wall time per export and its per-document share. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from archive.catalog import Catalog, CatalogRow
from bench.bench_verify import archive_day
from bench.common import peak_rss_mib, throwaway_stack
from retrieval.access import Role
from retrieval.dossier import export_dossier, validate_zip
from retrieval.service import Retrieval
from verification.config import HoldSet

PASSWORD = "bench password 123"  # noqa: S105 - a throwaway account in a throwaway stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--documents", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with throwaway_stack(full=True) as settings, tempfile.TemporaryDirectory() as out:
        archived = archive_day(settings, max(40, 3 * args.documents * args.repeat))
        r = Retrieval.open(settings)
        now = datetime.now(UTC)
        r.add_user(None, "admin.bench", Role.ADMIN, PASSWORD, now=now)
        admin = r.sign_in("admin.bench", PASSWORD, now=now)
        r.add_user(admin, "ro.bench", Role.RECORDS_OFFICER, PASSWORD, now=now)
        officer = r.sign_in("ro.bench", PASSWORD, now=now)
        rows = [
            CatalogRow.from_dict(x) for x in Catalog.open(settings.catalog_dir).rows().to_pylist()
        ]
        r.refresh()
        repeat = min(args.repeat, len(rows) // args.documents)
        single: list[float] = []
        for i in range(repeat):  # one encounter through the API: the CLI's `retrieve`
            begin = time.perf_counter()
            r.export(officer, out_dir=Path(out), now=datetime.now(UTC),
                     encounter_id=rows[i].encounter_id)  # fmt: skip
            single.append(time.perf_counter() - begin)
        dossiers: list[float] = []
        env = r._env_factory(HoldSet.of(r.register.held_encounters()))
        for i in range(repeat):  # n documents in one bag: a patient's dossier
            chosen = rows[i * args.documents : (i + 1) * args.documents]
            begin = time.perf_counter()
            context = {"exported_by": "bench"}
            result = export_dossier(chosen, env=env, out_dir=Path(out), label=f"bench-{i}",
                                    now=datetime.now(UTC), context=context)  # fmt: skip
            dossiers.append(time.perf_counter() - begin)
            validate_zip(result.path)
        r.index.close()
    print(f"archived {archived} records; {repeat} exports each")
    print(f"1 document via Retrieval.export: median {statistics.median(single):.2f} s, "
          f"max {max(single):.2f} s")  # fmt: skip
    print(f"{args.documents} documents in one bag: median {statistics.median(dossiers):.2f} s, "
          f"max {max(dossiers):.2f} s "
          f"({statistics.median(dossiers) / args.documents:.2f} s per document)")  # fmt: skip
    print(f"peak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()

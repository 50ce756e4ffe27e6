"""A verification run's result side at scale: peak memory of what the run keeps of its records,
before and after the streamed log and the tally (``verification.tally``).

Run by hand: ``python -m bench.bench_verify_results [--records 200000]``. Each case runs in a
fresh process (peak RSS is VmHWM) and takes the same synthetic results of a full run (nine
checks a record, one in 50 failed, one in 20 due for renewal) in batches of 200, as a run takes
them from its workers, then writes the log, the report and the summary:

- old: every ``RecordResult`` kept in a list, the log written from it at the end (session 7's
  first code: ``self.results``, ``Summary(results=...)``, ``write_log``);
- new: :meth:`VerificationRun.absorb` (rows streamed to the log, a tally kept) and ``finish``
  (less the audit event, which needs a store).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from archive.core.settings import Settings
from archive.store import ObjectStore
from bench.common import peak_rss_mib, table
from verification.config import HoldSet, VerificationSettings
from verification.log import write_log
from verification.report import Summary, write_reports
from verification.results import CheckResult, RecordResult, Renewal
from verification.run import RunPlan, VerificationRun
from verification.select import Mode, Selection
from verification.tally import Tally

NOW = datetime(2026, 1, 1, tzinfo=UTC)
CHECKS = ("object", "unseal", "signature", "pdfa", "evidence", "lock", "hold", "horizon", "mark")
BATCH = 200


def _results(n: int) -> Iterator[list[RecordResult]]:
    due = Renewal("horizon.tsa_expiring", "the TSA certificate ends 2027-01-01", NOW, "sha256")
    batch: list[RecordResult] = []
    for i in range(n):
        checks = [
            CheckResult.passed(c, f"{c} checked for record {i}: all as catalogued") for c in CHECKS
        ]
        if i % 50 == 0:
            checks[0] = CheckResult.failed(
                "object", "object.sha256_mismatch", f"bytes of {i} differ"
            )
        batch.append(
            RecordResult(
                encounter_id=f"enc-{i:09d}",
                patient_pseudonym=f"{i:064x}",
                object_key=f"records/v1/2026/01/01/{i:09d}",
                version_id=f"v{i:032x}",
                archive_day="2026-01-01",
                checks=tuple(checks),
                renewal=due if i % 20 == 0 else None,
                seconds=0.01,
                stage_seconds=tuple((c, 0.001) for c in CHECKS),
            )
        )
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


class _Unaudited(VerificationRun):
    """The run less its audit event (one small object at the store, the same for both paths)."""

    def _audit(self, summary: Summary) -> Summary:
        return summary


def _run(root: Path) -> VerificationRun:
    settings = Settings(data_dir=root / "data")
    vsettings = VerificationSettings(output_dir=root / "verification", workers=1)
    plan = RunPlan.create(settings, vsettings, selection=Selection(mode=Mode.FULL), now=NOW)
    return _Unaudited(
        settings=settings,
        vsettings=vsettings,
        plan=plan,
        holds=HoldSet(),
        archive_checks=[CheckResult.passed("catalog.chain", "intact")],
        findings=(),
        source=tuple,
        selected=0,
        audit_store=cast(ObjectStore, None),  # not written: see _Unaudited
    )


def _case(path: str, records: int, root: Path) -> dict[str, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    if path == "old":
        kept: list[RecordResult] = []
        for batch in _results(records):
            kept += batch
        out = root / "verification"
        log = write_log(out, kept, run_id="verify-old", mode="full", verified_at=NOW)
        summary = Summary.create(
            run_id="verify-old",
            mode="full",
            checks="full",
            started_at=NOW,
            duration_s=1.0,
            archive_checks=(CheckResult.passed("catalog.chain", "intact"),),
            findings=(),
            tally=Tally.of(kept),
            selected=len(kept),
        )
        summary = write_reports(out, summary, log_path=log)
    else:
        with _run(root) as run:
            for batch in _results(records):
                run.absorb(batch)
            summary = run.finish()
    return {
        "wall": time.perf_counter() - wall,
        "cpu": time.process_time() - cpu,
        "peak": peak_rss_mib(),
        "verified": summary.verified,
        "failed": summary.counts()["failed"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case is not None:  # one measurement in this fresh process
        with tempfile.TemporaryDirectory(prefix="emr-bench-verify-results-") as root:
            print(json.dumps(_case(args.case, args.records, Path(root))))
        return
    out: list[tuple[str, ...]] = [("path", "records", "wall s", "CPU s", "peak MiB", "failed")]
    for path in ("old", "new"):
        cmd = [sys.executable, "-m", "bench.bench_verify_results", "--records", str(args.records)]
        done = subprocess.run([*cmd, "--case", path], check=True, capture_output=True, text=True)
        f = json.loads(done.stdout.strip().splitlines()[-1])
        figures = [f"{f[k]:.1f}" for k in ("wall", "cpu")] + [f"{f['peak']:.0f}"]
        out.append((path, str(f["verified"]), *figures, str(f["failed"])))
        print(" ".join(out[-1]), flush=True)
    print()
    print(table(out))


if __name__ == "__main__":
    main()

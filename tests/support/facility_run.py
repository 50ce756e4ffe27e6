"""One facility's archive run in a process of its own, as a nightly deployment starts it:
``python -m tests.support.facility_run EXPORT FACILITY`` (settings from the environment,
:func:`tests.support.evidence_crash.child_env`); prints the run's summary as JSON.

:func:`facility_counts` says which facilities an export's encounters belong to."""

from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from archive.pipeline import ArchiveRun, RunOptions, window_for
from archive.sources import fhir
from infra.settings import AppSettings as Settings
from retention.classifier import PolicyClassifier
from tests.support.nightly import DAY

ICT = timezone(timedelta(hours=7))  # the window's local days


def facility_counts(export: Path) -> Counter[str]:
    """Encounters discharged on DAY (local time) per facility code (the Organization each
    Encounter names)."""
    codes = {}
    for line in (export / "Organization.ndjson").read_text(encoding="utf-8").splitlines():
        org = json.loads(line)
        codes[org["id"]] = fhir.identifier(org, fhir.SYS_FACILITY)
    found: Counter[str] = Counter()
    for line in (export / "Encounter.ndjson").read_text(encoding="utf-8").splitlines():
        encounter = json.loads(line)
        if "end" not in encounter.get("period", {}):
            continue  # still open: not in any window
        end = datetime.fromisoformat(encounter["period"]["end"]).astimezone(ICT)
        provider = encounter["serviceProvider"]["reference"].removeprefix("Organization/")
        found[str(codes[provider])] += end.date() == DAY
    return found


def run_facility(settings: Settings, export: Path, facility: str) -> dict[str, object]:
    window = window_for("Asia/Ho_Chi_Minh", since=DAY, until=None, now=datetime.now(UTC))
    options = RunOptions.create(
        settings, window=window, source=export, now=datetime.now(UTC), facility=facility
    )
    classifier = PolicyClassifier.from_settings(settings)
    with ArchiveRun.start(settings, options, classifier=classifier) as run:
        for batch in run.batches():
            run.archive_batch(batch)
        run.store_quarantine()
        return run.finish().to_dict()


if __name__ == "__main__":
    summary = run_facility(Settings(), Path(sys.argv[1]), sys.argv[2])
    print(json.dumps(summary), flush=True)

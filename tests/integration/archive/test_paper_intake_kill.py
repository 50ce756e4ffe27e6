"""kill -9 of ``emr-archive intake scans`` at each step that matters, one after the other on the
same shelf (each killed run makes some progress, the next picks it up), then a last run: every
paper record is archived exactly once, the catalog matches the bucket (no object stored and left
uncatalogued), and each bad input is one quarantine entry, however many runs saw it.

Steps (see :mod:`tests.support.intake_crash`): halfway through signing (some records OCR'd and
marked, one signed, none stored), after a record is stored and before the catalog, after the
catalog and before the evidence records. ``--no-ocr`` keeps it quick: the kill points are the
same with OCR, which only makes the conversion slower."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from archive.catalog import Catalog
from archive.store import S3ObjectStore
from archive.store.naming import QUARANTINE_PREFIX
from infra.intake import run_intake
from infra.settings import AppSettings as Settings
from tests.support.evidence_crash import child_env
from tests.support.nightly import record_versions

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HEADER = "file,record_number,patient_id,facility,admitted,discharged,converted_by\n"
GOOD = ("HS-1", "HS-2", "HS-3")
ROWS = "".join(
    f"{n}.tiff,{n},BN-{i},79001,2021-03-0{i},2021-03-1{i},Đỗ Thị Lan\n"
    for i, n in enumerate(GOOD, start=1)
) + (
    "HS-4.tiff,HS-4,BN-4,79001,1995-03-01,1995-03-12,Đỗ Thị Lan\n"  # retention-ended (2005)
    "HS-5.tiff,HS-5,BN-5,79001,2021-03-01,2021-03-12,Đỗ Thị Lan\n"  # missing-scan
)
BAD = 2


def _shelf(root: Path) -> tuple[Path, Path]:
    scans = root / "scans"
    scans.mkdir()
    for name in (*GOOD, "HS-4"):  # A5 at 100 dpi: the kill points, not the pixels, matter here
        Image.new("L", (583, 827), 255).save(scans / f"{name}.tiff", dpi=(100, 100))
    manifest = root / "manifest.csv"
    manifest.write_text(HEADER + ROWS, encoding="utf-8")
    return scans, manifest


def _killed_at(settings: Settings, step: str, nth: int, scans: Path, manifest: Path) -> None:
    argv = [sys.executable, "-m", "tests.support.intake_crash", step, str(nth), "--"]
    argv += [str(scans), "--manifest", str(manifest), "--no-ocr"]
    child = subprocess.Popen(
        argv,
        env=child_env(settings),
        start_new_session=True,
        cwd=Path.cwd(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _, err = child.communicate(timeout=240)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
    assert child.returncode == -signal.SIGKILL, (step, err.decode()[-2000:])


def _state(settings: Settings) -> tuple[list[tuple[str, str]], list[dict[str, object]], int]:
    store = S3ObjectStore.from_settings(settings)
    records = list(record_versions(store))
    quarantined = [v for v in store.list_versions(QUARANTINE_PREFIX) if not v.is_delete_marker]
    catalog = Catalog.open(settings.catalog_dir, create=True)
    return records, catalog.rows().to_pylist(), len(quarantined)


def test_intake_killed_at_each_step_then_rerun_archives_every_scan_once(
    settings: Settings, tmp_path: Path
) -> None:
    scans, manifest = _shelf(tmp_path)  # under the tests' source root

    # A chunk is converted whole, then signed: halfway through signing the first chunk, two
    # records are OCR'd and marked, one is signed, the third untouched, nothing stored.
    _killed_at(settings, "signing", 1, scans, manifest)
    records, rows, _ = _state(settings)
    assert (records, rows) == ([], [])

    _killed_at(settings, "stored", 1, scans, manifest)  # in the bucket, not in the catalog
    records, rows, _ = _state(settings)
    assert 1 <= len(records) < len(GOOD)
    assert rows == []
    stored_first = dict(records)

    _killed_at(settings, "catalogued", 1, scans, manifest)  # catalogued, no evidence yet
    records, rows, quarantined = _state(settings)
    assert len(records) == len(rows) == len(GOOD)
    assert all(dict(records)[k] == v for k, v in stored_first.items())  # adopted, not rewritten
    assert quarantined == BAD

    summary = run_intake(settings, scans, manifest, ocr=False)
    assert summary.failed == {}, summary.failed
    assert (summary.archived, summary.adopted, summary.already_archived) == (0, 0, len(GOOD))
    assert summary.quarantined == {"retention-ended": 1, "missing-scan": 1}
    assert summary.quarantine_new == 0  # the entries the killed runs stored, not twice
    assert summary.evidence_pending == 0  # the killed run's records got theirs now

    records, rows, quarantined = _state(settings)
    keys = [k for k, _ in records]
    assert len(keys) == len(set(keys)) == len(GOOD)  # once each in the bucket
    assert sorted(str(r["encounter_id"]) for r in rows) == [f"paper-79001-{n}" for n in GOOD]
    assert {(r["object_key"], r["version_id"]) for r in rows} == set(records)  # no orphan
    assert {r["source_kind"] for r in rows} == {"scanned"}
    assert quarantined == BAD

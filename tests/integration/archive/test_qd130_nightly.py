"""The nightly run archives a QĐ 130 day end to end on the real stack: chosen by what the source
directory holds, every good HOSO signed, sealed, locked and catalogued with the hospital's XML
embedded byte for byte, every planted fault quarantined with its reason, a rerun adding nothing,
and veraPDF calling each rendition PDF/A-3b."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from archive import wiring
from archive.catalog import Catalog
from archive.pipeline import ArchiveRun, RunOptions, RunSummary
from archive.render import extract_embedded_data
from archive.seal import ObjectIdentity
from archive.sources import Window
from archive.store import S3ObjectStore, withdraw
from infra.sample.qd130 import Qd130Summary, write_qd130_export
from infra.sample.qd130_signing import CERT_FILE, dev_facility
from infra.settings import AppSettings as Settings
from retention.classifier import PolicyClassifier
from tests.support.oracles import verapdf

pytestmark = pytest.mark.integration

DAY = date(2026, 11, 22)
TZ = "Asia/Ho_Chi_Minh"


def _run(settings: Settings, source: Path) -> RunSummary:
    options = RunOptions.create(
        settings, window=Window.for_day(DAY, TZ), source=source, now=datetime.now(UTC)
    )
    with ArchiveRun.start(
        settings, options, classifier=PolicyClassifier.from_settings(settings)
    ) as run:
        for batch in run.batches():
            run.archive_batch(batch)
        run.store_quarantine()
        return run.finish()


def _expected_quarantine(sample: Qd130Summary) -> Counter[str]:
    held = Counter(r.value for r in sample.held.values())
    held["duplicate-id"] += 1  # both copies of the twin are held back
    return held + Counter(reason.value for _, reason in sample.files.values())


def test_the_nightly_run_archives_a_qd130_day(settings: Settings, tmp_path: Path) -> None:
    source = tmp_path / "his-xml"
    facility = dev_facility(tmp_path / "facility")
    sample = write_qd130_export(source, encounters=14, seed=5, day=DAY, tz=TZ, facility=facility)
    assert sample.signed  # some files carry the facility's signature
    archive = settings.archive.model_copy(
        update={"facility_certs": tmp_path / "facility" / CERT_FILE}
    )
    settings = settings.model_copy(update={"archive": archive})

    summary = _run(settings, source)
    assert summary.failed == {}, summary.failed
    assert summary.archived == len(sample.archived)
    assert Counter(summary.quarantined) == _expected_quarantine(sample)

    rows = Catalog.open(settings.catalog_dir).rows().to_pylist()
    assert sorted(r["encounter_id"] for r in rows) == sorted(sample.archived)
    assert {r["source_kind"] for r in rows} == {"qd130"}
    assert all(r["episode_key"] == r["encounter_id"] for r in rows)  # MA_LK
    signatures = {
        r["encounter_id"]: (r["facility_signature"], r["facility_signer_sha256"]) for r in rows
    }
    assert {k for k, v in signatures.items() if v == ("valid", facility.sha256)} == set(
        sample.signed
    )
    assert {v for k, v in signatures.items() if k not in sample.signed} == {("absent", None)}
    classes = Counter(r["retention_class"] for r in rows)
    assert classes["death"] >= 1
    assert classes["ordinary"] >= 1

    store = S3ObjectStore.from_settings(settings)
    pdfs = []
    for row in rows:
        pdf = withdraw(
            identity=ObjectIdentity(row["bucket"], row["object_key"], row["encounter_id"]),
            version_id=row["version_id"],
            store=store,
            keys=wiring.open_keyring(settings),
            settings=settings.seal,
        )
        embedded = extract_embedded_data(pdf)
        assert hashlib.sha256(embedded).hexdigest() == row["data_sha256"]
        pdfs.append((row["encounter_id"], pdf))
    # Byte for byte: a single-HOSO file is embedded whole, a day file's HOSO as its slice.
    singles = {p.stem.removeprefix("HOSO_"): p.read_bytes() for p in source.glob("HOSO_1*.xml")}
    day_file = next(source.glob("*_GIAMDINHHS.xml")).read_bytes()
    for encounter_id, pdf in pdfs:
        embedded = extract_embedded_data(pdf)
        assert (
            embedded == singles[encounter_id] if encounter_id in singles else embedded in day_file
        )

    again = _run(settings, source)
    assert (again.archived, again.adopted, again.quarantine_new) == (0, 0, 0)
    assert again.already_archived == len(sample.archived)

    files = []
    for encounter_id, pdf in pdfs[:4]:
        path = tmp_path / f"{encounter_id}.pdf"
        path.write_bytes(pdf)
        files.append(path)
    verdicts = verapdf(files)
    refused = {p.name: v.error or v.failed for p, v in verdicts.items() if not v.compliant}
    assert refused == {}

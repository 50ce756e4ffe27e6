"""Paper intake end to end on the real stack: a synthetic Vietnamese scan (rendered with Pillow in
DejaVu, scanned back through OCRmyPDF) and a JPEG record archived as record kind ``scanned`` with
the conversion mark, every bad input quarantined with its reason, a rerun adding nothing; the
OCR layer holds the patient's name with its diacritics; verification (with the conversion-mark
check), veraPDF (PDF/A-3b) and EU DSS (PAdES B-LTA) accept the records; a record stripped of its
mark fails verification. One intake run (OCR is slow) feeds every assertion."""

from __future__ import annotations

import dataclasses
import json
import secrets
import subprocess
import zipfile
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from io import BytesIO
from pathlib import Path

import pikepdf
import pytest
from PIL import Image, ImageDraw, ImageFont

from archive import wiring
from archive.catalog import Catalog, table_to_rows
from archive.pipeline import ArchiveRun, RunOptions, RunSummary
from archive.pipeline.classifier import Classifier, RetentionDecision
from archive.render import extract_embedded_data
from archive.seal import ObjectIdentity
from archive.sources import Window
from archive.store import S3ObjectStore, withdraw
from infra.pki import DevPki
from infra.settings import AppSettings as Settings
from retention.classifier import PolicyClassifier
from retrieval.dossier import export_dossier
from tests.support.nightly import EndedClassifier, LockedAs
from tests.support.oracles import dss, verapdf
from tests.support.retention import wait_until
from verification.config import HoldSet, VerificationSettings
from verification.document import check_conversion_mark
from verification.results import Status
from verification.run import RunPlan, VerificationRun
from verification.select import Mode, Selection
from verification.worker import environment

pytestmark = pytest.mark.integration

NAME = "Nguyễn Thị Hương"
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
HEADER = "file,record_number,patient_id,facility,admitted,discharged,converted_by,deceased,icd10\n"
ROWS = (
    "HS-2015-001.tiff,HS-2015-001,BN-0001,79001,2020-03-01,2020-03-12,Trần Văn Bình,,J18.9\n"
    "HS-2015-002.jpg,HS-2015-002,BN-0002,79001,2015-04-02,2015-04-03,Trần Văn Bình,có,\n"
    "HS-2015-003.pdf,HS-2015-003,BN-0003,79001,2015-05-01,2015-05-02,Trần Văn Bình,,\n"
    "HS-2015-004.pdf,HS-2015-004,BN-0004,79001,2015-05-01,2015-05-02,Trần Văn Bình,,\n"
    "HS-2015-005.jpg,HS-2015-005,BN-0005,79001,2015-05-01,2015-05-02,Trần Văn Bình,,\n"
    "HS-2015-006.pdf,HS-2015-006,BN-0006,79001,2015-05-01,2015-05-02,Trần Văn Bình,,\n"
    "HS-2015-007.tiff,HS-2015-007,BN-0007,79001,2015-05-01,2015-05-02,Trần Văn Bình,,\n"
    "HS-2015-008.tiff,HS-2015-008,BN-0008,79001,2015-13-01,2015-05-02,Trần Văn Bình,,\n"
)
PAGES = (
    ["HỒ SƠ BỆNH ÁN", f"Họ và tên: {NAME}", "Chẩn đoán: Viêm phổi"],
    ["PHIẾU THEO DÕI", "Ngày thứ hai"],
    ["GIẤY RA VIỆN", "Ngày thứ ba"],
)
PAGES_PER_GROUP = 2
EXPECTED_QUARANTINE = {
    "encrypted-scan": 1,  # 003
    "unreadable-scan": 2,  # 004 damaged PDF, 005 not an image
    "empty-scan": 1,  # 006 a PDF without pages
    "missing-scan": 1,  # 007 listed, not scanned
    "invalid-manifest-row": 1,  # 008 month 13
    "unlisted-scan": 1,  # stray.tiff
}


@dataclass(frozen=True)
class Intake:
    settings: Settings
    first: RunSummary
    second: RunSummary
    late: RunSummary  # every retention period ended since the first run
    late_changed: RunSummary  # and then a corrected manifest row for an archived record
    rows: list[dict[str, object]]
    pdfs: dict[str, Path]


def _page(lines: list[str]) -> Image.Image:
    image = Image.new("L", (1240, 1754), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, 44)
    for i, line in enumerate(lines):
        draw.text((100, 150 + 90 * i), line, font=font, fill=0)
    return image


def _scans(scan_dir: Path) -> None:
    scan_dir.mkdir()
    # Three pages in one TIFF, converted two pages per OCRmyPDF call (PAGES_PER_GROUP): the
    # joined record must hold every page's text layer and mark, and pass veraPDF and DSS.
    pages = [_page(lines) for lines in PAGES]
    pages[0].save(
        scan_dir / "HS-2015-001.tiff",
        dpi=(150, 150),
        compression="tiff_lzw",
        save_all=True,
        append_images=pages[1:],
    )
    _page(["GIẤY RA VIỆN"]).convert("RGB").save(scan_dir / "HS-2015-002.jpg", dpi=(150, 150))
    with pikepdf.new() as pdf:
        pdf.add_blank_page()
        pdf.save(scan_dir / "HS-2015-003.pdf", encryption=pikepdf.Encryption(owner="o", user="u"))
    (scan_dir / "HS-2015-004.pdf").write_bytes(b"%PDF-1.7\n1 0 obj <<>> garbage")
    (scan_dir / "HS-2015-005.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pikepdf.new() as pdf:
        pdf.save(scan_dir / "HS-2015-006.pdf")
    _page(["?"]).save(scan_dir / "stray.tiff", dpi=(150, 150))


def _run(
    settings: Settings, scan_dir: Path, manifest: Path, classifier: Classifier | None = None
) -> RunSummary:
    now = datetime.now(UTC)
    window = Window.for_day(date(2026, 12, 1), "Asia/Ho_Chi_Minh")
    options = RunOptions.create(settings, window=window, source=scan_dir, now=now)
    options = dataclasses.replace(options, manifest=manifest)
    classifier = classifier or PolicyClassifier.from_settings(settings)
    with ArchiveRun.start(settings, options, classifier=classifier) as run:
        for batch in run.batches():
            run.archive_batch(batch)
        run.store_quarantine()
        return run.finish()


@pytest.fixture(scope="module")
def intake(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Intake:
    out = tmp_path_factory.mktemp("intake")
    settings = stack_settings.model_copy(
        update={
            "s3": stack_settings.s3.model_copy(update={"bucket": f"scans-{secrets.token_hex(4)}"}),
            "catalog": stack_settings.catalog.model_copy(update={"catalog_dir": out / "catalog"}),
            "archive": stack_settings.archive.model_copy(update={"workers": 1}),
            "intake": stack_settings.intake.model_copy(update={"pages_per_group": PAGES_PER_GROUP}),
        }
    )
    S3ObjectStore.from_settings(settings).create_locked_bucket()
    scan_dir = out / "scans"
    _scans(scan_dir)
    manifest = out / "manifest.csv"
    manifest.write_bytes(b"\xef\xbb\xbf" + (HEADER + ROWS).encode())  # Excel's "CSV UTF-8"
    # The record corrected below is locked only seconds, so that its period has really ended
    # when it is corrected (an amendment is never locked shorter than its catalogued versions).
    briefly = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=15)  # > a first run
    policy = PolicyClassifier.from_settings(settings)
    brief = LockedAs(policy, {"paper-79001-HS-2015-002": RetentionDecision("death", briefly)})
    first = _run(settings, scan_dir, manifest, brief)
    second = _run(settings, scan_dir, manifest)
    ended = EndedClassifier(policy)
    late = _run(settings, scan_dir, manifest, ended)
    corrected = out / "corrected" / "manifest.csv"  # same name: the other entries are found stored
    corrected.parent.mkdir()
    corrected.write_text(HEADER + ROWS.replace("BN-0002,", "BN-0020,"), encoding="utf-8")
    wait_until(briefly)
    late_changed = _run(settings, scan_dir, corrected, ended)
    rows = Catalog.open(settings.catalog_dir).rows().to_pylist()
    pdfs = {}
    for row in rows:
        eid = str(row["encounter_id"])
        pdf = withdraw(
            identity=ObjectIdentity(str(row["bucket"]), str(row["object_key"]), eid),
            version_id=str(row["version_id"]),
            store=S3ObjectStore.from_settings(settings),
            keys=wiring.open_keyring(settings),
            settings=settings.seal,
        )
        pdfs[eid] = out / f"{eid}.pdf"
        pdfs[eid].write_bytes(pdf)
    return Intake(settings, first, second, late, late_changed, rows, pdfs)


def test_intake_archives_good_scans_and_quarantines_each_bad_input(intake: Intake) -> None:
    assert intake.first.failed == {}, intake.first.failed
    assert intake.first.archived == 2
    assert dict(Counter(intake.first.quarantined)) == EXPECTED_QUARANTINE
    classes = {r["encounter_id"]: r["retention_class"] for r in intake.rows}
    assert classes == {"paper-79001-HS-2015-001": "ordinary", "paper-79001-HS-2015-002": "death"}


def test_a_rerun_adds_nothing(intake: Intake) -> None:
    s = intake.second
    assert (s.archived, s.adopted, s.quarantine_new, s.already_archived) == (0, 0, 0, 2)
    assert len(intake.rows) == 2


def test_a_rerun_after_the_retention_ended_finds_the_records_already_archived(
    intake: Intake,
) -> None:
    """The catalog wins over the retention-ended check: an archived record is not reported
    quarantined because its period has run out since (the other bad inputs still are)."""
    s = intake.late
    assert (s.archived, s.adopted, s.already_archived, s.failed) == (0, 0, 2, {})
    assert dict(Counter(s.quarantined)) == EXPECTED_QUARANTINE
    assert s.quarantine_new == 0


def test_a_row_corrected_after_the_retention_ended_is_quarantined_not_failed(
    intake: Intake,
) -> None:
    """An amendment of a scanned record past its period cannot be locked (Object Lock refuses
    a retain-until in the past: it failed with ``store.error`` on every rerun): it is
    quarantined ``retention-ended``, a disposition decision, and the archive keeps its
    version."""
    s = intake.late_changed
    assert (s.archived, s.adopted, s.amended, s.already_archived, s.failed) == (0, 0, 0, 1, {})
    assert dict(Counter(s.quarantined)) == {**EXPECTED_QUARANTINE, "retention-ended": 1}
    assert s.quarantine_new == 1
    assert len(intake.rows) == 2


def test_a_record_converted_in_page_groups_has_its_text_layer_and_mark_on_every_page(
    intake: Intake,
) -> None:
    path = intake.pdfs["paper-79001-HS-2015-001"]
    with pikepdf.open(path) as pdf:
        assert len(pdf.pages) == len(PAGES) > PAGES_PER_GROUP
    for number, lines in enumerate(PAGES, start=1):
        text = subprocess.run(
            ["pdftotext", "-f", str(number), "-l", str(number), "-enc", "UTF-8", str(path), "-"],
            check=True,
            capture_output=True,
        ).stdout.decode()
        assert lines[0] in text, number  # the OCR layer of this page
        assert "BẢN ĐIỆN TỬ CHUYỂN ĐỔI TỪ HỒ SƠ GIẤY" in text, number  # and its stamp
    assert intake.first.ocr_timeout_pages == 0


def test_the_ocr_layer_holds_the_patients_name_with_diacritics(intake: Intake) -> None:
    text = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(intake.pdfs["paper-79001-HS-2015-001"]), "-"],
        check=True,
        capture_output=True,
    ).stdout.decode()
    assert NAME in text
    assert "BẢN ĐIỆN TỬ CHUYỂN ĐỔI TỪ HỒ SƠ GIẤY" in text
    embedded = json.loads(
        extract_embedded_data(intake.pdfs["paper-79001-HS-2015-001"].read_bytes())
    )
    assert embedded["record_kind"] == "scanned"
    assert embedded["row"]["converted_by"] == "Trần Văn Bình"


def test_verification_passes_every_scanned_record_with_its_mark(
    intake: Intake, tmp_path: Path
) -> None:
    vsettings = VerificationSettings(output_dir=tmp_path / "verification", workers=1)
    plan = RunPlan.create(
        intake.settings, vsettings, selection=Selection(mode=Mode.FULL), now=datetime.now(UTC)
    )
    with VerificationRun.start(intake.settings, vsettings, plan, keep_results=True) as run:
        for batch in run.batches():
            run.verify_batch(batch)
        summary = run.finish()
    failed = [
        (c.check, c.reason_code, c.message)
        for r in summary.results
        for c in r.checks
        if c.status is not Status.PASSED
    ]
    assert summary.status is Status.PASSED, failed
    marks = [c for r in summary.results for c in r.checks if c.check == "conversion-mark"]
    assert len(marks) == 2
    assert all("converted from paper" in c.message for c in marks)


def test_verapdf_and_dss_accept_the_scanned_records(intake: Intake) -> None:
    files = list(intake.pdfs.values())
    refused = {p.name: v.error or v.failed for p, v in verapdf(files).items() if not v.compliant}
    assert refused == {}
    pki = DevPki(pki_dir=intake.settings.pki_dir, port=intake.settings.stack.pki_port)
    for path, verdict in dss(files, trust_anchor=pki.trust_root).items():
        assert verdict.error is None, (path.name, verdict.error)
        [signature] = verdict.signatures
        assert (signature.indication, signature.level) == ("TOTAL_PASSED", "PAdES-BASELINE-LTA")


def _strip(pdf: bytes, *, page: int | None = None, xmp: bool = False) -> bytes:
    with pikepdf.open(BytesIO(pdf)) as doc:
        if page is not None:  # the stamp is the overlay's content stream, added last
            contents = doc.pages[page].obj.Contents
            doc.pages[page].obj.Contents = pikepdf.Array(list(contents)[:-1])
        if xmp:
            data = doc.Root.Metadata.read_bytes()
            doc.Root.Metadata.write(data.replace(b"convertingPerson", b"someoneElse"))
        out = BytesIO()
        doc.save(out)
        return out.getvalue()


@pytest.mark.parametrize(("attack", "kwargs"), [("stamp", {"page": 0}), ("xmp", {"xmp": True})])
def test_a_scanned_record_without_its_mark_fails_verification(
    intake: Intake, attack: str, kwargs: dict[str, object]
) -> None:
    pdf = intake.pdfs["paper-79001-HS-2015-002"].read_bytes()
    assert check_conversion_mark(pdf).status is Status.PASSED
    stripped = _strip(pdf, **kwargs)  # type: ignore[arg-type]
    result = check_conversion_mark(stripped)
    assert (result.status, result.reason_code) == (Status.FAILED, "mark.missing"), attack
    assert "Trần" not in result.message


def test_the_export_names_a_paper_record_by_its_kind(intake: Intake, tmp_path: Path) -> None:
    rows = table_to_rows(Catalog.open(intake.settings.catalog_dir).rows())
    env = environment(intake.settings, VerificationSettings(workers=1), HoldSet())
    result = export_dossier(
        rows, env=env, out_dir=tmp_path, label="scans", now=datetime.now(UTC), context={}
    )
    with zipfile.ZipFile(result.path) as z:
        names = {n.split("/data/", 1)[1] for n in z.namelist() if "/data/" in n}
        manifest = z.read(f"scans/data/{rows[0].encounter_id}/scan-manifest.json")
    for row in rows:
        folder = row.encounter_id
        assert {f"{folder}/paper-record.pdf", f"{folder}/scan-manifest.json"} <= names
    assert not any("discharge-summary" in n or "fhir" in n for n in names)
    assert json.loads(manifest)["record_kind"] == "scanned"


def test_pages_over_the_ocr_timeout_are_counted_and_named_per_record(
    settings: Settings, tmp_path: Path
) -> None:
    """A real Tesseract timeout (0.001 s a page): the record is archived without its text
    layer, and the run's summary, report and private notes say so."""
    intake = settings.intake.model_copy(update={"ocr_timeout_s": 0.001})
    settings = settings.model_copy(update={"intake": intake})  # own bucket and catalog
    scan_dir = tmp_path / "scans"
    scan_dir.mkdir()
    _page(PAGES[0]).save(scan_dir / "HS-2016-001.tiff", dpi=(150, 150))
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        HEADER + "HS-2016-001.tiff,HS-2016-001,BN-0009,79001,2020-03-01,2020-03-12,Bình,,\n",
        encoding="utf-8",
    )
    summary = _run(settings, scan_dir, manifest)
    assert (summary.archived, summary.failed) == (1, {})
    assert (summary.ocr_timeout_pages, summary.ocr_timeout_records) == (1, 1)
    report = settings.data_dir / "runs" / f"{summary.run_id}.json"
    assert json.loads(report.read_text())["ocr_timeout_pages"] == 1
    notes = report.with_name(f"{summary.run_id}.notes.jsonl").read_text(encoding="utf-8")
    assert [json.loads(line) for line in notes.splitlines()] == [
        {
            "encounter_id": "paper-79001-HS-2016-001",
            "note": "archived without text layer on 1 page: OCR timeout",
        }
    ]

"""The ``ocr_timeout_s`` setting reaches Tesseract: a page over it is converted and marked but
gets no text layer (OCRmyPDF skips it with a warning), so a slow page never stops a batch. The
positive case, the patient's name found in the OCR layer, is the paper-intake integration test's."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

import pikepdf
from PIL import Image, ImageDraw, ImageFont

from archive.core.intake_section import IntakeSettings
from archive.intake import MARK_TITLE, ScanConverter, collect_scans
from archive.sources import EncounterBundle

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def test_a_page_over_the_ocr_timeout_is_archived_without_its_text_layer(tmp_path: Path) -> None:
    scans = tmp_path / "scans"
    scans.mkdir()
    page = Image.new("L", (1240, 1754), 255)
    ImageDraw.Draw(page).text((100, 150), "HELLO PAPER", font=ImageFont.truetype(FONT, 60))
    page.save(scans / "HS-1.tiff", dpi=(150, 150))
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "file,record_number,patient_id,facility,admitted,discharged,converted_by\n"
        "HS-1.tiff,HS-1,BN-1,79001,2020-03-01,2020-03-12,Bình\n",
        encoding="utf-8",
    )
    limits = IntakeSettings(ocr_timeout_s=0.001)
    [bundle] = collect_scans(
        scans, manifest, tz=ZoneInfo("Asia/Ho_Chi_Minh"), ocr=True, limits=limits
    )
    assert isinstance(bundle, EncounterBundle)
    converter = ScanConverter(ocr_timeout_s=limits.ocr_timeout_s)
    doc = converter.convert(bundle, converted_at=datetime.now(UTC))
    (tmp_path / "out.pdf").write_bytes(doc.pdf)
    text = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(tmp_path / "out.pdf"), "-"],
        check=True,
        capture_output=True,
    ).stdout.decode()
    assert MARK_TITLE in text  # converted and marked
    assert "HELLO" not in text  # but Tesseract was stopped before it read the page
    assert doc.ocr_timeout_pages == 1  # and the run is told, to report it for this record


def test_a_record_converted_in_page_groups_keeps_every_page_in_order_with_its_mark(
    tmp_path: Path,
) -> None:
    """Three pages of one multi-page TIFF, two per OCRmyPDF call: two groups joined into one
    PDF/A of three pages, in the scan's order, each stamped. (OCR off: the text layer on every
    page and veraPDF are the paper-intake integration test's.)"""
    scans = tmp_path / "scans"
    scans.mkdir()
    pages = [Image.new("L", (600 + 40 * n, 850), 255) for n in range(3)]  # told apart by width
    pages[0].save(scans / "HS-2.tiff", dpi=(100, 100), save_all=True, append_images=pages[1:])
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "file,record_number,patient_id,facility,admitted,discharged,converted_by\n"
        "HS-2.tiff,HS-2,BN-2,79001,2020-03-01,2020-03-12,Bình\n",
        encoding="utf-8",
    )
    [bundle] = collect_scans(
        scans, manifest, tz=ZoneInfo("Asia/Ho_Chi_Minh"), ocr=False, limits=IntakeSettings()
    )
    assert isinstance(bundle, EncounterBundle)
    grouped = ScanConverter(pages_per_group=2).convert(bundle, converted_at=datetime.now(UTC))
    assert grouped.pages == 3
    with pikepdf.open(BytesIO(grouped.pdf)) as pdf:
        widths = [
            int(image.Width)
            for page in pdf.pages
            for image in page.images.values()
            if int(image.Width) >= 600  # the scan, not the stamp's
        ]
        assert widths == [600 + 40 * n for n in range(3)]
        assert len(pdf.Root.OutputIntents) == 1  # the first group's, for the whole document
    path = tmp_path / "grouped.pdf"
    path.write_bytes(grouped.pdf)
    for number in range(1, 4):
        text = subprocess.run(
            ["pdftotext", "-f", str(number), "-l", str(number), "-enc", "UTF-8", str(path), "-"],
            check=True,
            capture_output=True,
        ).stdout.decode()
        assert MARK_TITLE in text, number

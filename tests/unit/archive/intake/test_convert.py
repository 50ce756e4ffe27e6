"""The ``ocr_timeout_s`` setting reaches Tesseract: a page over it is converted and marked but
gets no text layer (OCRmyPDF skips it with a warning), so a slow page never stops a batch. The
positive case, the patient's name found in the OCR layer, is the paper-intake integration test's."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

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

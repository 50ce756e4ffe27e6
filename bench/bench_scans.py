"""Paper intake speed, run by hand: ``python -m bench.bench_scans [--pages N]``.

Converts a synthetic record of N A4 pages (Vietnamese text drawn with Pillow in DejaVu at
200 dpi, grey, as a records-room scanner delivers them) with and without OCR, through the same
:class:`archive.intake.ScanConverter` the archive run uses, and prints pages per second and the
peak resident memory of this process and of its children (Tesseract, Ghostscript) — per record,
so divide by the pages for a per-page bound. Signing, sealing and storing are the nightly bench's.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from PIL import Image, ImageDraw, ImageFont

from archive.core.intake_section import IntakeSettings
from archive.intake import ScanConverter, collect_scans

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
LINES = ["HỒ SƠ BỆNH ÁN", "Họ và tên: Nguyễn Thị Hương", "Chẩn đoán: Viêm phổi cộng đồng"] * 8


def _record(folder: Path, pages: int) -> Path:
    font = ImageFont.truetype(FONT, 40)
    names = []
    for n in range(pages):
        image = Image.new("L", (1654, 2339), 255)  # A4 at 200 dpi
        draw = ImageDraw.Draw(image)
        for i, line in enumerate(LINES):
            draw.text((150, 150 + 80 * i), f"{line} ({n + 1})", font=font, fill=0)
        name = f"p{n:03d}.tiff"
        image.save(folder / name, dpi=(200, 200), compression="tiff_lzw")
        names.append(name)
    manifest = folder / "manifest.csv"
    manifest.write_text(
        "file,record_number,patient_id,facility,admitted,discharged,converted_by\n"
        f"{';'.join(names)},HS-1,BN-1,79001,2020-01-01,2020-01-05,Bench\n",
        encoding="utf-8",
    )
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=6)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        manifest = _record(folder, args.pages)
        for ocr in (False, True):
            [bundle] = collect_scans(
                folder, manifest, tz=ZoneInfo("Asia/Ho_Chi_Minh"), ocr=ocr, limits=IntakeSettings()
            )
            start = time.perf_counter()
            doc = ScanConverter().convert(bundle, converted_at=datetime.now(UTC))  # type: ignore[arg-type]
            seconds = time.perf_counter() - start
            results["ocr" if ocr else "no_ocr"] = {
                "pages": doc.pages,
                "seconds": round(seconds, 2),
                "pages_per_s": round(doc.pages / seconds, 3),
                "pdf_bytes_per_page": len(doc.pdf) // doc.pages,
            }
    results["peak_rss_mb"] = {
        "self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024,
    }
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

"""Paper intake speed and memory, run by hand:
``python -m bench.bench_scans [--pages 5 60] [--group 10] [--no-ocr-only]``.

Converts a synthetic record of N A4 pages (Vietnamese text drawn with Pillow in DejaVu at 200 dpi,
grey, one multi-page TIFF as a records-room scanner delivers it) through the same
:class:`archive.intake.ScanConverter` the archive run uses, with and without OCR, once as one
group (``--group`` 0: the whole record in one OCRmyPDF/Ghostscript call, as before page groups)
and once in groups of ``--group`` pages. Each case runs in a fresh process and reports its own
peak resident memory (VmHWM: img2pdf, pikepdf, OCRmyPDF's threads) and, sampled every 20 ms from
/proc, the largest Ghostscript and Tesseract child. It prints pages per second (wall) and CPU
seconds per page (this process and its children: the machine is shared, wall time is not).
Signing, sealing and storing are the nightly bench's. (Earlier figures read ``ru_maxrss`` of
``RUSAGE_CHILDREN``, which counts each child at its forked parent's size before it runs
Ghostscript: that, not Ghostscript, was the memory that grew with the pages.)

What still grows with the pages in the converting process is the output (the signed record is
held in memory, about the PDF's size: ~170 KiB a page here). The ~0.3 MB a page more that it
grew by was the join of the page groups (``Pdf.pages.extend`` copied every group's images into
memory); qpdf's own page selection reads them from the groups' files as it saves
(:func:`archive.intake.pages.joined`). Groups of 10, no OCR, load 7-13: converter peak for 80
pages 165 -> 147 MiB (135 for 10 pages: 0.43 -> 0.17 MiB a page); 200 pages 173 MiB after (one
OCRmyPDF call for the whole record: 248 MiB, OCRmyPDF's own memory, which groups bound).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from PIL import Image, ImageDraw, ImageFont

from archive.core.intake_section import IntakeSettings
from archive.intake import ScanConverter, collect_scans

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
LINES = ["HỒ SƠ BỆNH ÁN", "Họ và tên: Nguyễn Thị Hương", "Chẩn đoán: Viêm phổi cộng đồng"] * 8


def _pages(count: int) -> Iterator[Image.Image]:
    font = ImageFont.truetype(FONT, 40)
    for n in range(count):  # one page in memory at a time
        image = Image.new("L", (1654, 2339), 255)  # A4 at 200 dpi
        draw = ImageDraw.Draw(image)
        for i, line in enumerate(LINES):
            draw.text((150, 150 + 80 * i), f"{line} ({n + 1})", font=font, fill=0)
        yield image


def _record(folder: Path, pages: int) -> Path:
    """One multi-page TIFF (a row's file list is too short for one name per page of a thick
    record) and its manifest."""
    images = _pages(pages)
    first = next(images)
    first.save(
        folder / "record.tiff",
        dpi=(200, 200),
        compression="tiff_lzw",
        save_all=True,
        append_images=images,
    )
    manifest = folder / "manifest.csv"
    manifest.write_text(
        "file,record_number,patient_id,facility,admitted,discharged,converted_by\n"
        "record.tiff,HS-1,BN-1,79001,2020-01-01,2020-01-05,Bench\n",
        encoding="utf-8",
    )
    return manifest


class _ChildPeaks(threading.Thread):
    """The largest resident size seen of each kind of descendant process (gs, tesseract;
    "python" is a child between fork and exec, sharing this process's pages), from /proc."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peaks: dict[str, int] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.02):
            for pid in _descendants(os.getpid()):
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
                name, rss = fields["Name"].strip(), int(fields.get("VmRSS", "0 kB").split()[0])
                self.peaks[name] = max(self.peaks.get(name, 0), rss * 1024)


def _high_water_kib() -> int:
    """This process's peak resident size since it started its program (VmHWM). Not ru_maxrss:
    Linux carries that over from the process that forked it (the bench's parent, which drew the
    pages), and ``RUSAGE_CHILDREN`` likewise counts every forked child at its parent's size
    before it runs Ghostscript or Tesseract."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _descendants(root: int) -> list[int]:
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        for task in Path(f"/proc/{pid}/task").glob("*/children"):
            try:
                children = [int(c) for c in task.read_text().split()]
            except OSError:
                continue
            found += children
            todo += children
    return found


def _one(folder: Path, ocr: bool, group: int) -> dict[str, object]:
    manifest = folder / "manifest.csv"
    pages = int(getattr(Image.open(folder / "record.tiff"), "n_frames", 1))
    [bundle] = collect_scans(
        folder, manifest, tz=ZoneInfo("Asia/Ho_Chi_Minh"), ocr=ocr, limits=IntakeSettings()
    )
    converter = ScanConverter(pages_per_group=group or pages)
    sampler = _ChildPeaks()
    sampler.start()
    cpu = time.process_time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    doc = converter.convert(bundle, converted_at=datetime.now(UTC))  # type: ignore[arg-type]
    seconds = time.perf_counter() - start
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    sampler.done.set()
    sampler.join()
    cpu_s = (time.process_time() - cpu[0]) + (
        children.ru_utime + children.ru_stime - cpu[1].ru_utime - cpu[1].ru_stime
    )
    mib = 1024 * 1024
    return {
        "pages": doc.pages,
        "ocr": ocr,
        "group": group or "whole",
        "seconds": round(seconds, 1),
        "pages_per_s": round(doc.pages / seconds, 3),
        "cpu_s_per_page": round(cpu_s / doc.pages, 2),
        "pdf_kib_per_page": len(doc.pdf) // doc.pages // 1024,
        "peak_rss_mib": {
            "converter": _high_water_kib() // 1024,
            **{name: rss // mib for name, rss in sorted(sampler.peaks.items())},
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, nargs="+", default=[5, 60])
    parser.add_argument("--group", type=int, default=IntakeSettings().pages_per_group)
    parser.add_argument("--no-ocr-only", action="store_true")
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)  # folder ocr group
    args = parser.parse_args()
    if args.one:
        folder, ocr, group = args.one
        print(json.dumps(_one(Path(folder), ocr == "1", int(group))))
        return
    print(f"load average {os.getloadavg()}", file=sys.stderr)
    for pages in args.pages:
        with tempfile.TemporaryDirectory() as work:
            _record(Path(work), pages)  # here: drawing the pages is not the converter's memory
            for ocr in (False,) if args.no_ocr_only else (False, True):
                for group in (0, args.group):  # before page groups, then with them
                    case = [work, str(int(ocr)), str(group)]
                    out = subprocess.run(
                        [sys.executable, "-m", "bench.bench_scans", "--one", *case],
                        check=True,
                        capture_output=True,
                        text=True,
                    )
                    print(out.stdout.strip(), flush=True)


if __name__ == "__main__":
    main()

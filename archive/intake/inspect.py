"""Look at a scan file before converting it: can it be read, how many pages, how large.

Each check answers with a :class:`ScanProblem` (a quarantine reason and a fixed phrase, never
anything read from the file) or the page count. Images are opened by Pillow (TIFF may hold many
pages), PDFs by pikepdf (qpdf). Limits keep one record from taking the worker's memory: a page's
side in points (A0 plus margin) and an image's pixels.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pikepdf
from PIL import Image, UnidentifiedImageError

from archive.sources import QuarantineReason

IMAGE_SUFFIXES: Final = frozenset({".tif", ".tiff", ".jpg", ".jpeg"})
PDF_SUFFIXES: Final = frozenset({".pdf"})
SCAN_SUFFIXES: Final = IMAGE_SUFFIXES | PDF_SUFFIXES
MAX_FILE_BYTES: Final = 512 * 1024 * 1024
MAX_SIDE_PT: Final = 3500.0  # A0's long side is 3370 pt
MAX_PIXELS: Final = 120_000_000  # 600 dpi A3 is 70 Mpx
MAX_PAGES: Final = 2000
_DEFAULT_DPI: Final = 96.0  # what img2pdf assumes for an image without a resolution


@dataclass(frozen=True, slots=True)
class ScanProblem:
    reason: QuarantineReason
    detail: str


def inspect_scan(path: Path) -> int | ScanProblem:
    """The number of pages of ``path``, or why it cannot be converted."""
    suffix = path.suffix.lower()
    if suffix not in SCAN_SUFFIXES:
        return ScanProblem(QuarantineReason.UNREADABLE_SCAN, "not a .pdf, .tif(f) or .jp(e)g file")
    try:
        size = path.stat().st_size
    except OSError:
        return ScanProblem(QuarantineReason.MISSING_SCAN, "the file cannot be opened")
    if size > MAX_FILE_BYTES:
        return ScanProblem(QuarantineReason.OVERSIZED_SCAN, f"larger than {MAX_FILE_BYTES} bytes")
    if size == 0:
        return ScanProblem(QuarantineReason.EMPTY_SCAN, "the file is empty")
    return _inspect_pdf(path) if suffix in PDF_SUFFIXES else _inspect_image(path)


def _inspect_pdf(path: Path) -> int | ScanProblem:
    try:
        with pikepdf.open(path) as pdf:
            if pdf.is_encrypted:  # opened with an empty user password, still encrypted
                return ScanProblem(QuarantineReason.ENCRYPTED_SCAN, "the PDF is encrypted")
            pages = len(pdf.pages)
            if pages == 0:
                return ScanProblem(QuarantineReason.EMPTY_SCAN, "the PDF has no page")
            if pages > MAX_PAGES:
                return ScanProblem(QuarantineReason.OVERSIZED_SCAN, f"more than {MAX_PAGES} pages")
            for number, page in enumerate(pdf.pages, start=1):
                box = page.mediabox
                width, height = float(box[2] - box[0]), float(box[3] - box[1])
                if max(abs(width), abs(height)) > MAX_SIDE_PT:
                    return ScanProblem(
                        QuarantineReason.OVERSIZED_SCAN,
                        f"page {number} is larger than {MAX_SIDE_PT:.0f} pt on a side",
                    )
            return pages
    except pikepdf.PasswordError:
        return ScanProblem(QuarantineReason.ENCRYPTED_SCAN, "the PDF needs a password")
    except (pikepdf.PdfError, ValueError, TypeError):
        return ScanProblem(QuarantineReason.UNREADABLE_SCAN, "the PDF is damaged or not a PDF")


def _inspect_image(path: Path) -> int | ScanProblem:
    try:
        with warnings.catch_warnings():
            # Pillow warns (and then refuses) above its own bomb limit: ours is checked below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                frames = getattr(image, "n_frames", 1)
                for index in range(frames):
                    image.seek(index)
                    problem = _frame_problem(image, index + 1)
                    if problem is not None:
                        return problem
                    image.load()  # decodes the frame: a truncated file fails here
                return frames
    except Image.DecompressionBombError:
        return ScanProblem(QuarantineReason.OVERSIZED_SCAN, "the image has too many pixels")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return ScanProblem(QuarantineReason.UNREADABLE_SCAN, "the image is damaged or not an image")


def _frame_problem(image: Image.Image, number: int) -> ScanProblem | None:
    width, height = image.size
    if width * height > MAX_PIXELS:
        return ScanProblem(
            QuarantineReason.OVERSIZED_SCAN, f"page {number} has more than {MAX_PIXELS} pixels"
        )
    dpi = image.info.get("dpi", (_DEFAULT_DPI, _DEFAULT_DPI))
    try:
        side_pt = max(width / float(dpi[0]), height / float(dpi[1])) * 72
    except (TypeError, ValueError, ZeroDivisionError, IndexError):
        side_pt = max(width, height) / _DEFAULT_DPI * 72
    if side_pt > MAX_SIDE_PT:
        return ScanProblem(
            QuarantineReason.OVERSIZED_SCAN,
            f"page {number} is larger than {MAX_SIDE_PT:.0f} pt on a side at its resolution",
        )
    return None

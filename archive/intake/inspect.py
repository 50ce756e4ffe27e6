"""Look at a scan file before converting it: can it be read, how many pages, how large.

Each check answers with a :class:`ScanProblem` (a quarantine reason and a fixed phrase, never
anything read from the file) or the page count. Images are opened by Pillow (TIFF may hold many
pages), PDFs by pikepdf (qpdf). The limits (the ``[intake]`` settings section) keep one record
from taking the worker's memory: the file's bytes, its pages, a page's side in points at its
resolution and an image's pixels.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pikepdf
from PIL import Image, UnidentifiedImageError

from archive.core.intake_section import IntakeSettings
from archive.intake.bitmaps import SYMBOL_PIXELS, UnmeasurableError, declared
from archive.sources import QuarantineReason

IMAGE_SUFFIXES: Final = frozenset({".tif", ".tiff", ".jpg", ".jpeg"})
PDF_SUFFIXES: Final = frozenset({".pdf"})
SCAN_SUFFIXES: Final = IMAGE_SUFFIXES | PDF_SUFFIXES
_DEFAULT_DPI: Final = 96.0  # what img2pdf assumes for an image without a resolution
# Pillow modes img2pdf wraps losslessly; 16-bit and float samples ("I;16", "I", "F") it refuses.
_MODES: Final = frozenset({"1", "L", "LA", "P", "RGB", "RGBA", "CMYK"})


@dataclass(frozen=True, slots=True)
class ScanProblem:
    reason: QuarantineReason
    detail: str


def inspect_scan(path: Path, limits: IntakeSettings) -> int | ScanProblem:
    """The number of pages of ``path``, or why it cannot be converted."""
    suffix = path.suffix.lower()
    if suffix not in SCAN_SUFFIXES:
        return ScanProblem(QuarantineReason.UNREADABLE_SCAN, "not a .pdf, .tif(f) or .jp(e)g file")
    try:
        size = path.stat().st_size
    except OSError:
        return ScanProblem(QuarantineReason.MISSING_SCAN, "the file cannot be opened")
    if size > limits.max_file_bytes:
        return ScanProblem(
            QuarantineReason.OVERSIZED_SCAN, f"larger than {limits.max_file_mib} MiB (max_file_mib)"
        )
    if size == 0:
        return ScanProblem(QuarantineReason.EMPTY_SCAN, "the file is empty")
    if suffix in PDF_SUFFIXES:
        return _inspect_pdf(path, limits)
    return _inspect_image(path, limits)


def _inspect_pdf(path: Path, limits: IntakeSettings) -> int | ScanProblem:
    try:
        with pikepdf.open(path) as pdf:
            if pdf.is_encrypted:  # opened with an empty user password, still encrypted
                return ScanProblem(QuarantineReason.ENCRYPTED_SCAN, "the PDF is encrypted")
            pages = len(pdf.pages)
            if pages == 0:
                return ScanProblem(QuarantineReason.EMPTY_SCAN, "the PDF has no page")
            if pages > limits.max_pages:
                return _too_many_pages(limits)
            for number, page in enumerate(pdf.pages, start=1):
                problem = _pdf_page_problem(page, number, limits)
                if problem is not None:
                    return problem
            return _pdf_image_problem(pdf, limits) or pages
    except pikepdf.PasswordError:
        return ScanProblem(QuarantineReason.ENCRYPTED_SCAN, "the PDF needs a password")
    except (pikepdf.PdfError, ValueError, TypeError):
        return ScanProblem(QuarantineReason.UNREADABLE_SCAN, "the PDF is damaged or not a PDF")


def _pdf_page_problem(
    page: pikepdf.Page, number: int, limits: IntakeSettings
) -> ScanProblem | None:
    box = page.mediabox
    width, height = float(box[2] - box[0]), float(box[3] - box[1])
    if max(abs(width), abs(height)) > limits.max_page_side_pt:
        return ScanProblem(
            QuarantineReason.OVERSIZED_SCAN,
            f"page {number} is larger than {limits.max_page_side_pt:.0f} pt on a side "
            "(max_page_side_pt)",
        )
    return None


def _pdf_image_problem(pdf: pikepdf.Pdf, limits: IntakeSettings) -> ScanProblem | None:
    """A small page may still draw an image that Ghostscript decodes whole (a pixel bomb, a
    blank area compressed to a few bytes): every image stream of the file, however reached, by
    the largest bitmap it declares (JBIG2 and CCITT: their data's own sizes, :mod:`.bitmaps`),
    and for JBIG2 by the symbols it declares."""
    for obj in pdf.objects:
        if isinstance(obj, pikepdf.Stream) and obj.get("/Subtype") == pikepdf.Name.Image:
            try:
                found = declared(obj)
            except UnmeasurableError as e:
                return ScanProblem(
                    QuarantineReason.UNREADABLE_SCAN,
                    f"an image's decoded size cannot be read without decoding it ({e})",
                )
            if found.pixels > limits.max_pixels:
                return ScanProblem(
                    QuarantineReason.OVERSIZED_SCAN,
                    f"an image has more than {limits.max_page_megapixels} million pixels "
                    "(max_page_megapixels)",
                )
            if found.symbols * SYMBOL_PIXELS > limits.max_pixels:
                return ScanProblem(
                    QuarantineReason.OVERSIZED_SCAN,
                    f"an image declares more than {limits.max_pixels // SYMBOL_PIXELS:,} JBIG2 "
                    "symbols (its symbol dictionaries' and text regions' counts; each symbol "
                    f"costs the decoder as much as {SYMBOL_PIXELS} pixels of "
                    "max_page_megapixels)",
                )
    return None


def _inspect_image(path: Path, limits: IntakeSettings) -> int | ScanProblem:
    try:
        with warnings.catch_warnings():
            # Pillow warns (and then refuses) above its own bomb limit: ours is checked below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                frames = getattr(image, "n_frames", 1)
                if frames > limits.max_pages:
                    return _too_many_pages(limits)
                for index in range(frames):
                    image.seek(index)
                    problem = _frame_problem(image, index + 1, limits)
                    if problem is not None:
                        return problem
                    image.load()  # decodes the frame: a truncated file fails here
                return frames
    except Image.DecompressionBombError:
        return ScanProblem(QuarantineReason.OVERSIZED_SCAN, "the image has too many pixels")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return ScanProblem(QuarantineReason.UNREADABLE_SCAN, "the image is damaged or not an image")


def _too_many_pixels(number: int, limits: IntakeSettings) -> ScanProblem:
    return ScanProblem(
        QuarantineReason.OVERSIZED_SCAN,
        f"page {number} has more than {limits.max_page_megapixels} million pixels "
        "(max_page_megapixels)",
    )


def _too_many_pages(limits: IntakeSettings) -> ScanProblem:
    return ScanProblem(
        QuarantineReason.OVERSIZED_SCAN, f"more than {limits.max_pages} pages (max_pages)"
    )


def _frame_problem(image: Image.Image, number: int, limits: IntakeSettings) -> ScanProblem | None:
    width, height = image.size
    if width * height > limits.max_pixels:
        return _too_many_pixels(number, limits)
    if image.mode not in _MODES:
        return ScanProblem(
            QuarantineReason.UNREADABLE_SCAN,
            f"page {number} has more than 8 bits per sample, which PDF/A conversion cannot keep "
            "losslessly: save it as 8-bit grey or colour",
        )
    dpi = image.info.get("dpi", (_DEFAULT_DPI, _DEFAULT_DPI))
    try:
        side_pt = max(width / float(dpi[0]), height / float(dpi[1])) * 72
    except (TypeError, ValueError, ZeroDivisionError, IndexError):
        side_pt = max(width, height) / _DEFAULT_DPI * 72
    if side_pt > limits.max_page_side_pt:
        return ScanProblem(
            QuarantineReason.OVERSIZED_SCAN,
            f"page {number} is larger than {limits.max_page_side_pt:.0f} pt on a side at its "
            "resolution (max_page_side_pt)",
        )
    return None

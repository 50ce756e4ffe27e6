"""A paper record's scans in, an unsigned PDF/A-3b with a text layer and the conversion mark out.

Images are wrapped losslessly by img2pdf; OCRmyPDF (Tesseract ``vie`` + ``eng``, Ghostscript)
then makes a PDF/A-3b with an invisible text layer over each page. ``output_type`` is always
"pdfa-3": OCRmyPDF's default, PDF/A-2b, forbids embedding a non-PDF/A file such as the manifest
JSON. With OCR off (``tesseract_timeout=0``) it only converts to PDF/A. ``force_ocr``: Debian's
Ghostscript 10.0 refuses ``skip_text``/``redo_ocr`` with PDF/A output, and a scan has no text to
keep. Then :func:`~archive.intake.mark.apply_mark` stamps, writes the XMP and embeds the row. The
signature that follows covers it all. Work files live in a private temporary directory, removed
whatever happens; no page, name or id reaches a log.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO
from pathlib import Path
from typing import Final

import img2pdf
import ocrmypdf
import pikepdf

from archive.core.errors import RenderError
from archive.intake.mark import ConversionMark, apply_mark
from archive.render import RenderedDocument
from archive.sources import EncounterBundle

LANGUAGES: Final = ("vie", "eng")
_QUIET: Final = ("ocrmypdf", "pikepdf", "PIL", "img2pdf", "pdfminer")


@dataclass(frozen=True, slots=True)
class ScanConverter:
    """Stateless; one per worker process. ``languages``: Tesseract's traineddata names;
    ``ocr_timeout_s``: Tesseract's time per page (the ``[intake]`` setting)."""

    languages: tuple[str, ...] = LANGUAGES
    ocr_timeout_s: float = 180.0

    def convert(self, bundle: EncounterBundle, *, converted_at: datetime) -> RenderedDocument:
        """The marked PDF/A-3b of one collected paper record (``source_kind`` "scanned")."""
        if converted_at.tzinfo is None:
            raise RenderError("the conversion time must be timezone-aware")
        paths = [Path(p) for p in bundle.bundle.get("paths", [])]
        if not paths:
            raise RenderError("the paper record names no scan file")
        person, record = _manifest_fields(bundle)
        mark = ConversionMark(
            facility=bundle.facility_code,
            person=person,
            converted_at=converted_at.replace(microsecond=0),
            record_number=record,
        )
        with tempfile.TemporaryDirectory(prefix="emr-intake-") as work:
            source = _as_pdf(paths, Path(work))
            ocr_out = Path(work) / "ocr.pdf"
            self._ocr(source, ocr_out, ocr=bool(bundle.bundle.get("ocr", True)))
            try:
                with pikepdf.open(ocr_out) as pdf:
                    apply_mark(pdf, mark, manifest=bundle.canonical, title=_title(record))
                    pages = len(pdf.pages)
                    out = BytesIO()
                    pdf.save(out, deterministic_id=True)
            except (pikepdf.PdfError, ValueError) as e:
                raise RenderError(
                    f"the conversion mark could not be applied ({type(e).__name__})"
                ) from e
        data = out.getvalue()
        return RenderedDocument(
            pdf=data,
            pdf_sha256=hashlib.sha256(data).hexdigest(),
            data_sha256=bundle.sha256,
            pages=pages,
        )

    def _ocr(self, source: Path, target: Path, *, ocr: bool) -> None:
        for name in _QUIET:  # their INFO lines would flood the run's log, page by page
            logging.getLogger(name).setLevel(logging.WARNING)
        try:
            code = ocrmypdf.ocr(
                source,
                target,
                language=list(self.languages),
                output_type="pdfa-3",
                force_ocr=True,
                pdfa_image_compression="lossless",
                tesseract_timeout=self.ocr_timeout_s if ocr else 0.0,
                jobs=1,
                use_threads=True,  # the archive's worker pool is the parallelism; no nested pools
                # Tesseract's own text-only PDF, grafted under each page: OCRmyPDF's default fpdf2
                # renderer patches fpdf2 process-wide, which would change the bytes of the
                # discharge summaries the same worker renders (archive.render pins fpdf2's
                # internals and refuses a patched fpdf2).
                pdf_renderer="sandwich",
                progress_bar=False,
            )
        except ocrmypdf.exceptions.ExitCodeException as e:
            raise RenderError(f"OCRmyPDF refused the scan ({type(e).__name__})") from e
        if code != ocrmypdf.ExitCode.ok:
            raise RenderError(f"OCRmyPDF ended with exit code {int(code)}")


def _as_pdf(paths: list[Path], work: Path) -> Path:
    if len(paths) == 1 and paths[0].suffix.lower() == ".pdf":
        return paths[0]
    target = work / "images.pdf"
    try:
        target.write_bytes(
            img2pdf.convert([str(p) for p in paths], rotation=img2pdf.Rotation.ifvalid)
        )
    except (img2pdf.ImageOpenError, OSError, ValueError) as e:
        raise RenderError(f"the scan images cannot be wrapped as PDF ({type(e).__name__})") from e
    return target


def _manifest_fields(bundle: EncounterBundle) -> tuple[str, str]:
    row = json.loads(bundle.canonical)["row"]
    person = unicodedata.normalize("NFC", str(row["converted_by"]))
    return person, str(row["record_number"])


def _title(record_number: str) -> str:
    return f"Hồ sơ bệnh án giấy số {record_number} (bản chuyển đổi)"

"""A paper record's scans in, an unsigned PDF/A-3b with a text layer and the conversion mark out.

Images are wrapped losslessly by img2pdf; OCRmyPDF (Tesseract ``vie`` + ``eng``, Ghostscript)
then makes a PDF/A-3b with an invisible text layer over each page, a group of pages at a time
(:mod:`.pages`: memory bounded by the group, not the record), and the groups are joined.
``output_type`` is always "pdfa-3": OCRmyPDF's default, PDF/A-2b, forbids embedding a non-PDF/A
file such as the manifest JSON. With OCR off (``tesseract_timeout=0``) it only converts to PDF/A.
``force_ocr``: Debian's Ghostscript 10.0 refuses ``skip_text``/``redo_ocr`` with PDF/A output,
and a scan has no text to keep. Then :func:`~archive.intake.mark.apply_mark` stamps, writes the
XMP and embeds the row. The signature that follows covers it all. A page Tesseract does not
finish within ``ocr_timeout_s`` is kept without text: counted, for the run to report. Work files
live in a private temporary directory, removed whatever happens; no page, name or id reaches a
log.
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

import ocrmypdf
import pikepdf

from archive.core.errors import RenderError
from archive.intake.mark import ConversionMark, apply_mark
from archive.intake.pages import joined, page_groups
from archive.render import RenderedDocument
from archive.sources import EncounterBundle

LANGUAGES: Final = ("vie", "eng")
_QUIET: Final = ("ocrmypdf", "pikepdf", "PIL", "img2pdf", "pdfminer")
# What OCRmyPDF 17 logs (ocrmypdf._exec.tesseract.page_timedout) for a page it gave up on; the
# timeout tests run a real Tesseract against it, so a change of wording fails them.
_TESSERACT_LOG: Final = "ocrmypdf._exec.tesseract"
_TIMEOUT_MESSAGE: Final = "took too long to OCR"


@dataclass(frozen=True, slots=True)
class ScanConverter:
    """Stateless; one per worker process. ``languages``: Tesseract's traineddata names;
    ``ocr_timeout_s``: Tesseract's time per page (the ``[intake]`` setting); ``pages_per_group``:
    pages per OCRmyPDF (and Ghostscript) call, which bounds their memory (:mod:`.pages`)."""

    languages: tuple[str, ...] = LANGUAGES
    ocr_timeout_s: float = 180.0
    pages_per_group: int = 10

    def convert(self, bundle: EncounterBundle, *, converted_at: datetime) -> RenderedDocument:
        """The marked PDF/A-3b of one collected paper record (``source_kind`` "scanned"), with
        the number of pages Tesseract ran out of time on (archived without a text layer)."""
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
        ocr = bool(bundle.bundle.get("ocr", True))
        with tempfile.TemporaryDirectory(prefix="emr-intake-") as work:
            parts: list[Path] = []
            timeouts = 0
            for number, group in enumerate(page_groups(paths, Path(work), self.pages_per_group)):
                parts.append(Path(work) / f"ocr-{number:05d}.pdf")
                timeouts += self._ocr(group, parts[-1], ocr=ocr)
                if group.parent == Path(work):
                    group.unlink()  # only the converted groups stay on disk until the join
            try:
                with joined(parts) as pdf:
                    apply_mark(pdf, mark, manifest=bundle.canonical, title=_title(record))
                    pages = len(pdf.pages)
                    out = BytesIO()
                    pdf.save(out, deterministic_id=True)
            except (pikepdf.PdfError, pikepdf.JobUsageError, ValueError) as e:
                raise RenderError(
                    f"the conversion mark could not be applied ({type(e).__name__})"
                ) from e
        data = out.getvalue()
        return RenderedDocument(
            pdf=data,
            pdf_sha256=hashlib.sha256(data).hexdigest(),
            data_sha256=bundle.sha256,
            pages=pages,
            ocr_timeout_pages=timeouts,
        )

    def _ocr(self, source: Path, target: Path, *, ocr: bool) -> int:
        """Convert one group; the number of its pages Tesseract timed out on."""
        for name in _QUIET:  # their INFO lines would flood the run's log, page by page
            logging.getLogger(name).setLevel(logging.WARNING)
        timeouts = _TimeoutCount()
        tesseract_log = logging.getLogger(_TESSERACT_LOG)
        tesseract_log.addHandler(timeouts)
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
        finally:
            tesseract_log.removeHandler(timeouts)
        if code != ocrmypdf.ExitCode.ok:
            raise RenderError(f"OCRmyPDF ended with exit code {int(code)}")
        return timeouts.pages


class _TimeoutCount(logging.Handler):
    """Counts OCRmyPDF's warning for a page Tesseract did not finish in time: OCRmyPDF then puts
    the page in without text and says so only in its log. (The worker converts one record at a
    time, so every such warning while the handler is attached is this record's.)"""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.pages = 0

    def emit(self, record: logging.LogRecord) -> None:
        if _TIMEOUT_MESSAGE in record.getMessage():
            self.pages += 1


def _manifest_fields(bundle: EncounterBundle) -> tuple[str, str]:
    row = json.loads(bundle.canonical)["row"]
    person = unicodedata.normalize("NFC", str(row["converted_by"]))
    return person, str(row["record_number"])


def _title(record_number: str) -> str:
    return f"Hồ sơ bệnh án giấy số {record_number} (bản chuyển đổi)"

"""Intake: digitised paper records, a scan directory and its manifest in, records to archive out.

``manifest`` reads the records department's CSV (one row per paper record); ``inspect`` looks at
each scan file (readable, pages, size); ``collect`` pairs rows and files and yields what any source
yields (an :class:`~archive.sources.EncounterBundle` of record kind ``scanned``, or a quarantine
entry with its reason); ``convert`` turns a record's scans into a PDF/A-3b with an OCR text layer
(OCRmyPDF, Tesseract vie+eng) and ``mark`` adds the conversion mark (stamp, XMP, embedded row);
``mark_check`` is what verification asks of such a record. Signing, sealing, storing and the
catalog are the archive run's (:mod:`archive.pipeline`), as for every other record.
"""

from archive.intake.collect import SCANNED, canonical_manifest, collect_scans
from archive.intake.convert import ScanConverter
from archive.intake.inspect import ScanProblem, inspect_scan
from archive.intake.manifest import RowProblem, ScanRow, read_manifest
from archive.intake.mark import MARK_TITLE, ConversionMark, apply_mark
from archive.intake.mark_check import mark_problem, scanned_row

__all__ = [
    "MARK_TITLE",
    "SCANNED",
    "ConversionMark",
    "RowProblem",
    "ScanConverter",
    "ScanProblem",
    "ScanRow",
    "apply_mark",
    "canonical_manifest",
    "collect_scans",
    "inspect_scan",
    "mark_problem",
    "read_manifest",
    "scanned_row",
]

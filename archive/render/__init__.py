"""Render: an encounter bundle in, a PDF/A-3b discharge summary out.

Takes an :class:`~archive.sources.EncounterBundle` and a creation time; returns the PDF bytes with
the bundle embedded as an associated file, so a person reads the page and a machine reads the
data, both under the signature that follows. Same input and time give the same bytes. Also here:
the structural PDF/A checks and the extraction of the embedded data that verification reuses.
"""

from archive.render import hex_strings
from archive.render.fonts import CORE, REPERTOIRE, FontFiles, FontSet
from archive.render.layout import SummaryPdf
from archive.render.page_tree import page_tree_problem
from archive.render.pdfa import PdfaReport, check_pdfa3b, extract_embedded_data, read_pdf
from archive.render.pdfa_tools import pdffonts_check, qpdf_check
from archive.render.program import FixedProgram
from archive.render.renderer import RenderedDocument, Renderer, RenderSettings
from archive.render.style import PT
from archive.render.xmp import pdf_date, xmp_date

__all__ = [
    "CORE",
    "PT",
    "REPERTOIRE",
    "FixedProgram",
    "FontFiles",
    "FontSet",
    "PdfaReport",
    "RenderSettings",
    "RenderedDocument",
    "Renderer",
    "SummaryPdf",
    "check_pdfa3b",
    "extract_embedded_data",
    "page_tree_problem",
    "pdf_date",
    "pdffonts_check",
    "qpdf_check",
    "read_pdf",
    "xmp_date",
]

# Every pyHanko reader in the archive (signing read-back, validation, PDF/A) parses hex strings
# in one step instead of byte by byte: same objects and errors (archive.render.hex_strings).
hex_strings.install()

"""Writing the finished document: fpdf2's output producer with our fixed fonts and an Info
dictionary; fpdf2 is pinned to 2.8.9 (:func:`archive.render.program.check_fpdf`).

The other half of the fpdf2 internals (the first, :mod:`archive.render.program`, builds the
fixed font program once per process and draws text with it). Here, once per document, the fixed
fonts are written from their prebuilt objects instead of being subset again, in the same objects
and order fpdf2 would write, and the Info dictionary fpdf2 leaves out of PDF/A files is added
back. :func:`assert_fixed_fonts_written` then checks that fpdf2 really called this producer for
every fixed font, so a silent change in fpdf2 fails with :class:`RenderError` instead of
producing a PDF without its fonts.
"""

from __future__ import annotations

from typing import Any

from fpdf import FPDF, FPDF_VERSION
from fpdf.fonts import PDFFontDescriptor, TTFFont
from fpdf.output import (
    CIDSystemInfo,
    ContentWithoutID,
    OutputProducer,
    PDFFont,
    PDFXrefAndTrailer,
)
from fpdf.syntax import Name, PDFArray, PDFContentStream

from archive.core.errors import RenderError
from archive.render.program import FixedSubset

__all__ = ["SummaryOutput", "assert_fixed_fonts_written"]


class SummaryOutput(OutputProducer):
    """fpdf2's output producer with the fixed fonts written from their prebuilt objects and an
    Info dictionary.

    fpdf2 leaves the Info dictionary out of PDF/A files. PDF/A-3 allows one that matches the
    XMP, and tools such as pdfinfo read the title only from it, so this adds it back.

    Without /Producer and /ModDate on purpose: when pyHanko signs, it appends its name to an
    existing /Producer but writes only its own name to the XMP, and it stamps /ModDate and
    xmp:ModifyDate from two clock readings; either would break PDF/A's Info = XMP rule. Absent
    entries it leaves absent (ModDate) or sets identically in both (Producer)."""

    _info: Any = None

    def _add_fonts(
        self,
        image_objects_per_index: Any,
        gfxstate_objs_per_name: Any,
        pattern_objs_per_name: Any,
    ) -> Any:
        registry = self.fpdf.fonts  # fpdf2's font registry, a dict it iterates here
        everything = list(registry.items())
        fixed = [
            f for f in registry.values() if isinstance(getattr(f, "subset", None), FixedSubset)
        ]
        # fpdf2 writes the other fonts (subsetting each one for this document) ...
        for font in fixed:
            del registry[font.fontkey]
        try:
            objects = super()._add_fonts(
                image_objects_per_index, gfxstate_objs_per_name, pattern_objs_per_name
            )
        finally:
            registry.clear()
            registry.update(everything)
        # ... and the fixed ones are written here from their prebuilt streams.
        for font in sorted(fixed, key=lambda f: f.i):
            if not isinstance(font, TTFFont):
                raise RenderError("internal error: a fixed font is not a TrueType font")
            objects[font.i] = self._add_fixed_font(font)
        return objects

    def _add_fixed_font(self, font: TTFFont) -> PDFFont:
        # The same objects, in the same order, as fpdf2 2.8.9 writes for a TrueType font.
        subset = font.subset
        if not isinstance(subset, FixedSubset) or not isinstance(font.desc, PDFFontDescriptor):
            raise RenderError("internal error: not a fixed font")
        program = subset.program
        composite = PDFFont(subtype="Type0", base_font=program.base_font, encoding="Identity-H")
        self._add_pdf_obj(composite, "fonts")
        cid_font = PDFFont(
            subtype="CIDFontType2",
            base_font=program.base_font,
            d_w=font.desc.missing_width,
            w=program.widths,
        )
        self._add_pdf_obj(cid_font, "fonts")
        composite.descendant_fonts = PDFArray([cid_font])
        to_unicode = _PrebuiltStream(program.to_unicode)
        self._add_pdf_obj(to_unicode, "fonts")
        composite.to_unicode = to_unicode
        system_info = CIDSystemInfo()
        self._add_pdf_obj(system_info, "fonts")
        cid_font.c_i_d_system_info = system_info
        descriptor = font.desc
        descriptor.font_name = Name(program.base_font)
        self._add_pdf_obj(descriptor, "fonts")
        cid_font.font_descriptor = descriptor
        cid_to_gid = _PrebuiltStream(program.cid_to_gid)
        self._add_pdf_obj(cid_to_gid, "fonts")
        cid_font.c_i_d_to_g_i_d_map = cid_to_gid
        font_file = _PrebuiltStream(program.font_file, length1=program.font_file_length)
        self._add_pdf_obj(font_file, "fonts")
        descriptor.font_file2 = font_file  # type: ignore[attr-defined]
        subset.written = True
        return composite

    def _add_encryption(self) -> Any:
        # Called right after fpdf2 skipped the Info dictionary: add it as the next object.
        self._info = self._add_info()
        self._info.producer = None
        return super()._add_encryption()

    def _finalize_catalog(self, *args: Any, **kwargs: Any) -> None:
        super()._finalize_catalog(*args, **kwargs)
        trailer = self.pdf_objs[-1]
        if not isinstance(trailer, PDFXrefAndTrailer):
            raise RenderError(
                f"fpdf2 {FPDF_VERSION} changed its output order; review archive/render/output.py"
            )
        self.pdf_objs[-1] = _TrailerWithInfo(trailer, self._info)


class _TrailerWithInfo(ContentWithoutID):
    def __init__(self, trailer: PDFXrefAndTrailer, info: Any) -> None:
        self._trailer = trailer
        self._info = info

    def serialize(self, _security_handler: Any = None) -> str:
        self._trailer.info_obj = self._info
        return self._trailer.serialize(_security_handler)


class _PrebuiltStream(PDFContentStream):
    """A stream whose contents were Flate-compressed once per process."""

    def __init__(self, compressed: bytes, length1: int | None = None) -> None:
        super().__init__(contents=compressed, compress=False)
        self.filter = Name("FlateDecode")
        self.length1 = length1  # /Length1 of a FontFile2 stream; None writes nothing


def assert_fixed_fonts_written(pdf: FPDF) -> None:
    """After ``output()``: every fixed font was written by :class:`SummaryOutput`."""
    for font in pdf.fonts.values():
        subset = getattr(font, "subset", None)
        if isinstance(subset, FixedSubset) and not subset.written:
            raise RenderError(
                f"fpdf2 {FPDF_VERSION} did not write font {font.fontkey} through "
                "archive.render.output.SummaryOutput; its internals changed, review that module"
            )

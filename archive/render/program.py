"""The fixed font program: what the renderer does with fpdf2's *internals* before output.

fpdf2 is pinned to 2.8.9; this module and :mod:`archive.render.output` are the only two that
touch its internals. What fpdf2's public API cannot do, and why the renderer needs it:

* **A fixed, pre-serialised font subset.** fpdf2 subsets every TrueType font again for every
  document (``OutputProducer._add_fonts``: fontTools ``Subsetter`` + ``TTFont.save`` + zlib), about
  half of a discharge summary's CPU time. The primary face is already cut once per process to a
  fixed character set (:data:`archive.render.fonts.CORE`), so :func:`build_fixed_program` also
  serialises it once: the compressed FontFile2 stream, the ``/W`` widths, the ToUnicode CMap and
  the CIDToGIDMap, with one character code per Unicode code point (two code points drawn by one
  glyph keep separate codes, so text extraction returns exactly the characters written). Every
  document then embeds those same bytes: :class:`FixedSubset` stands in for fpdf2's
  per-document ``SubsetMap`` so text is encoded with the fixed codes, and
  :class:`~archive.render.output.SummaryOutput` writes the prebuilt objects instead of
  subsetting. The other faces (extended repertoire, complete DejaVu Sans, configured fallbacks)
  still go through fpdf2's per-document subsetting.
* **Cheap lines of text.** ``FPDF.cell`` costs ~0.2 ms per call (text fragments, graphics-state
  copies, re-measuring); :func:`show_text` writes the same text object for a line that is all
  in the fixed face. Lines with other faces or the page-count alias still go through ``cell``.
* **Fonts parsed once per process**, cloned into each document (:func:`fixed_clone`,
  :func:`subset_clone`) with fresh per-document state.

:func:`check_fpdf` (run by ``Renderer.create``) refuses any other fpdf2 version and checks the
internals both modules use still have the expected shape; :class:`FixedSubset` refuses to be
subset by fpdf2 itself, so a silent change in fpdf2 fails with :class:`RenderError` instead of
producing a PDF without its fonts.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from io import BytesIO
from typing import IO, Any

from fontTools import ttLib
from fpdf import FPDF, FPDF_VERSION
from fpdf.enums import PDFResourceType
from fpdf.fonts import Glyph, SubsetMap, TTFFont
from fpdf.output import (
    OutputProducer,
    _build_cmap_blocks,
    _cid_font_widths,
)

from archive.core.errors import RenderError

__all__ = [
    "SUPPORTED_FPDF",
    "FixedProgram",
    "FixedSubset",
    "build_fixed_program",
    "check_fpdf",
    "fixed_clone",
    "show_text",
    "subset_clone",
]

SUPPORTED_FPDF = "2.8.9"
_REVIEW = "review archive/render/program.py and output.py"

# The internals this module and output.py rely on: (object, attribute, parameter names or None).
_EXPECTED: tuple[tuple[Any, str, tuple[str, ...] | None], ...] = (
    (
        OutputProducer,
        "_add_fonts",
        ("self", "image_objects_per_index", "gfxstate_objs_per_name", "pattern_objs_per_name"),
    ),
    (OutputProducer, "_add_pdf_obj", ("self", "pdf_obj", "trace_label")),
    (OutputProducer, "_add_encryption", ("self",)),
    (OutputProducer, "_add_info", ("self",)),
    (OutputProducer, "_finalize_catalog", None),
    (SubsetMap, "pick", None),
    (SubsetMap, "items", ("self",)),
    (TTFFont, "get_text_width", None),
    (FPDF, "_out", ("self", "s")),
    (FPDF, "text_color", None),
    (FPDF, "fill_color", None),
)


def check_fpdf() -> None:
    """Refuse an fpdf2 whose internals this module and output.py were not written against."""
    if FPDF_VERSION != SUPPORTED_FPDF:
        raise RenderError(
            f"fpdf2 {FPDF_VERSION} is installed but the renderer relies on internals of "
            f"fpdf2 {SUPPORTED_FPDF} (archive/render/program.py, output.py); install "
            f"fpdf2=={SUPPORTED_FPDF} or review those modules against the new version"
        )
    for owner, name, params in _EXPECTED:
        member = getattr(owner, name, None)
        if member is None:
            raise RenderError(f"fpdf2 has no {owner.__name__}.{name}; {_REVIEW}")
        if params is not None and tuple(inspect.signature(member).parameters) != params:
            raise RenderError(f"fpdf2 changed the signature of {owner.__name__}.{name}; {_REVIEW}")
    catalog = getattr(FPDF(), "_resource_catalog", None)
    if not callable(getattr(catalog, "add", None)):
        raise RenderError(f"fpdf2 has no FPDF._resource_catalog.add; {_REVIEW}")


# --- the fixed subset -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FixedProgram:
    """The PDF objects of one fixed font subset, built once per process and shared read-only."""

    base_font: str  # subset tag derived from the program bytes + PostScript name
    codes: Mapping[int, int]  # Unicode code point -> 2-byte character code in the document
    glyphs: Mapping[Glyph, int]  # the same, in fpdf2's SubsetMap form
    widths: str  # /W array of the CIDFont
    to_unicode: bytes  # compressed ToUnicode CMap
    cid_to_gid: bytes  # compressed CIDToGIDMap
    font_file: bytes  # compressed TrueType program (FontFile2)
    font_file_length: int  # its uncompressed size (/Length1)
    advances: Mapping[str, float]  # character -> advance width in thousandths of the font size
    encoded: Mapping[str, str]  # character -> its code as four hex digits, for show_text()

    @property
    def stream_bytes(self) -> int:
        """Compressed bytes this font adds to every document that uses it (streams only)."""
        return len(self.font_file) + len(self.to_unicode) + len(self.cid_to_gid)


def build_fixed_program(template: TTFFont, data: bytes) -> FixedProgram:
    """Serialise ``template`` (parsed from ``data``) as a font with one code per code point.

    The codes are the ones fpdf2's own ``SubsetMap`` would hand out if every character of the
    font were drawn in code point order, and the objects are built the way fpdf2 2.8.9 builds
    them, except that the font program is ``data`` itself (already subset, nothing to drop).
    """
    subset = SubsetMap(template)
    try:
        for codepoint in sorted(template.cmap):
            subset.pick(codepoint)
        glyphs = {glyph: code for glyph, code in subset.items() if glyph is not None}
    finally:
        SubsetMap.pick.cache_clear()  # fpdf2 caches per (map, code point) for the whole process
        SubsetMap.get_glyph.cache_clear()
    codes: dict[int, int] = {}
    to_unicode: list[str] = []
    cid_widths: dict[int, int] = {}
    cid_to_gid = bytearray(2 * 65536)
    for glyph, code in sorted(glyphs.items(), key=lambda item: item[1]):
        if code > 0xFFFF or not isinstance(glyph.unicode, tuple) or len(glyph.unicode) != 1:
            raise RenderError(f"internal error: unexpected glyph {glyph} in the fixed subset")
        (codepoint,) = glyph.unicode
        if codepoint != 0:
            codes[codepoint] = code
        to_unicode.append(f"<{code:04X}> <{codepoint:04X}>\n")
        cid_widths[code] = glyph.glyph_width
        gid = template.ttfont.getGlyphID(glyph.glyph_name)
        cid_to_gid[2 * code : 2 * code + 2] = gid.to_bytes(2, "big")
    cmap = (
        "/CIDInit /ProcSet findresource begin\n"
        "12 dict begin\n"
        "begincmap\n"
        "/CIDSystemInfo\n"
        "<</Registry (Adobe)\n"
        "/Ordering (UCS)\n"
        "/Supplement 0\n"
        ">> def\n"
        "/CMapName /Adobe-Identity-UCS def\n"
        "/CMapType 2 def\n"
        "1 begincodespacerange\n"
        "<0000> <FFFF>\n"
        "endcodespacerange\n"
        f"{_build_cmap_blocks(to_unicode, 'bfchar')}"
        "endcmap\n"
        "CMapName currentdict /CMap defineresource pop\n"
        "end\n"
        "end"
    )
    return FixedProgram(
        base_font=f"{_subset_tag(data)}+{template.name}",
        codes=codes,
        glyphs=glyphs,
        widths=_cid_font_widths(cid_widths),
        to_unicode=zlib.compress(cmap.encode("latin-1"), 9),
        cid_to_gid=zlib.compress(bytes(cid_to_gid), 9),
        font_file=zlib.compress(data, 9),
        font_file_length=len(data),
        advances={chr(c): float(template.cw[c]) for c in codes},
        encoded={chr(c): f"{code:04X}" for c, code in codes.items()},
    )


def _subset_tag(data: bytes) -> str:
    # ISO 32000-1 9.6.4: six upper-case letters naming this particular subset.
    return "".join(chr(ord("A") + b % 26) for b in hashlib.sha256(data).digest()[:6])


class FixedSubset(SubsetMap):
    """fpdf2's ``SubsetMap`` for a fixed program: a plain, uncached look-up of the fixed codes.

    One per document and font (it records the document's missing glyphs through ``font``);
    the mappings themselves are the process's shared :class:`FixedProgram`.
    """

    def __init__(self, font: TTFFont, program: FixedProgram) -> None:  # no super(): no glyph I/O
        self.font = font
        self.program = program
        self._char_id_per_glyph: dict[Glyph | None, int] = dict(program.glyphs.items())
        self._next = max(program.glyphs.values(), default=0) + 1
        self._reserved = []
        self.written = False  # set by SummaryOutput when it has written the font's objects

    def pick(self, unicode: int) -> int | None:  # type: ignore[override]
        code = self.program.codes.get(unicode)
        if code is None and unicode not in self.font.missing_glyphs:
            self.font.missing_glyphs.append(unicode)  # measuring routes such characters away
        return code

    def pick_glyph(self, glyph: Glyph | None) -> int | None:
        raise RenderError("internal error: the fixed font subset cannot take new glyphs")

    def get_all_glyph_names(self) -> list[str]:
        # Only fpdf2's own subsetting asks for this, and it would subset the shared template in
        # place: refuse, so an fpdf2 that bypasses SummaryOutput fails before doing damage.
        raise RenderError(
            f"fpdf2 {FPDF_VERSION} tried to subset the fixed font {self.font.fontkey} itself; "
            "its internals changed, review archive/render/program.py"
        )


def fixed_clone(template: TTFFont, program: FixedProgram, fontkey: str, index: int) -> TTFFont:
    """A document's copy of a fixed font: shares everything read-only, owns its bookkeeping."""
    font = copy.copy(template)
    font.i = index
    font.fontkey = fontkey
    font.desc = copy.copy(template.desc)
    font.missing_glyphs = []
    font.biggest_size_pt = 0
    font._hbfont = None
    font.subset = FixedSubset(font, program)
    return font


def subset_clone(template: TTFFont, data: bytes, fontkey: str, index: int) -> TTFFont:
    """A document's copy of a font fpdf2 subsets itself (parsed from ``data``).

    Shares the read-only character map and widths; everything fpdf2 mutates while writing one
    document (subset map, descriptor object, fontTools tables) is fresh.
    """
    font = copy.copy(template)
    font.i = index
    font.fontkey = fontkey
    stream: IO[bytes] = BytesIO(data)
    font.ttfont = ttLib.TTFont(stream, recalcTimestamp=False, lazy=True)
    font.desc = copy.copy(template.desc)
    font.subset = SubsetMap(font)
    font.missing_glyphs = []
    font.biggest_size_pt = 0
    font._hbfont = None
    return font


def show_text(
    pdf: FPDF, fontkey: str, size_pt: float, x_pt: float, y_pt: float, hex_codes: str
) -> None:
    """Draw one line in a fixed font at baseline origin (``x_pt``, ``y_pt``), in points from the
    page's lower left corner, in the current text colour; ``hex_codes`` from
    :attr:`FixedProgram.encoded`.

    What ``FPDF.cell`` writes for such a line, without its per-call machinery (text fragments,
    graphics-state copies, width re-measuring): about half of a document's drawing time. The
    text object sits in ``q``/``Q`` so the font and colour set here do not leak into the state
    fpdf2 tracks for its own drawing.
    """
    font = pdf.fonts[fontkey]
    pdf._resource_catalog.add(PDFResourceType.FONT, font.i, pdf.page)
    color = pdf.text_color
    fill = "" if color is None or color == pdf.fill_color else color.serialize().lower() + " "
    pdf._out(
        f"q BT /F{font.i} {size_pt:.2f} Tf {x_pt:.2f} {y_pt:.2f} Td {fill}<{hex_codes}> Tj ET Q"
    )

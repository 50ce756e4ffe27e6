"""Fonts for the discharge summary: loaded, checked, subset and serialised once per process.

fpdf2 parses a TrueType file on every ``add_font`` and subsets it again on every ``output``. Both
are the bulk of a document's CPU time with a 750 kB font like DejaVu Sans, so :class:`FontSet`
does the expensive part once. Faces, in the order a character is looked up:

1. ``dejavu``: DejaVu Sans (regular and bold) cut to :data:`CORE` (Latin, Vietnamese, common
   punctuation and symbols, Greek letters) and **serialised once**
   (:func:`archive.render.program.build_fixed_program`): every document embeds the same font program
   and the same ToUnicode/CIDToGIDMap/widths, written from bytes prepared at start-up. That costs
   about 12 KiB more per font and document than a per-document subset, and saves ~45 ms of CPU.
2. ``dejavuext``: DejaVu Sans pre-subset to the wider :data:`REPERTOIRE` (all of Latin Extended,
   combining marks, more symbols); fpdf2 subsets it per document, only when a document uses it.
3. ``dejavufull``: the complete DejaVu Sans (Cyrillic, more symbols), likewise.
4. the configured fallback fonts, in order.

All faces are without hinting, OpenType layout tables or kerning (fpdf2 draws without shaping,
so they are unused). fpdf2's parsed font object (character map, widths, descriptor) is built
once per face and cloned into each document with fresh per-document state.

A character that no face covers raises :class:`RenderError`: text never silently disappears.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import cast

from fontTools import subset as ft_subset
from fontTools import ttLib
from fpdf import FPDF
from fpdf.fonts import TTFFont

from archive.core.errors import RenderError
from archive.render.program import (
    FixedProgram,
    build_fixed_program,
    check_fpdf,
    fixed_clone,
    subset_clone,
)

FONT_PACKAGE = "fonts-dejavu-core"

# Unicode blocks kept in the pre-subset extended face. Everything else DejaVu Sans has is still
# drawable through the complete-font fallback, only slower.
REPERTOIRE: tuple[tuple[int, int], ...] = (
    (0x0020, 0x007E),  # Basic Latin
    (0x00A0, 0x024F),  # Latin-1 Supplement, Latin Extended-A and -B (Ơ ơ Ư ư)
    (0x02B0, 0x02FF),  # spacing modifier letters
    (0x0300, 0x036F),  # combining diacritical marks
    (0x0370, 0x03FF),  # Greek (micro, alpha, beta, Delta in laboratory names)
    (0x1E00, 0x1EFF),  # Latin Extended Additional (ạ ả ấ ầ ẩ ẫ ậ ... ỹ)
    (0x2000, 0x206F),  # general punctuation (dashes, curly quotes, ellipsis, bullet, per mille)
    (0x2070, 0x209F),  # superscripts and subscripts (10⁹/L)
    (0x20A0, 0x20CF),  # currency (₫)
    (0x2100, 0x218F),  # letterlike symbols and number forms (℃ №)
    (0x2190, 0x21FF),  # arrows
    (0x2200, 0x22FF),  # mathematical operators (≤ ≥ ± ≈ ≠)
    (0x25A0, 0x25FF),  # geometric shapes (■ □ ● ○)
    (0x2713, 0x2718),  # check marks
    (0xFFFD, 0xFFFD),  # replacement character
)

# The fixed subset embedded whole in every document (each range lies within REPERTOIRE). Every
# character here costs bytes in every document (~45 bytes per glyph and font, compressed), so it
# holds what Vietnamese discharge summaries use; the rest of REPERTOIRE stays one fallback away.
CORE: tuple[tuple[int, int], ...] = (
    (0x0020, 0x007E),  # Basic Latin
    (
        0x00A0,
        0x00FF,
    ),  # Latin-1 Supplement (degree, plus-minus, micro, times, accented vowels)
    (0x0102, 0x0103),  # Ă ă
    (0x0110, 0x0111),  # Đ đ
    (0x0128, 0x0129),  # Ĩ ĩ
    (0x0168, 0x0169),  # Ũ ũ
    (0x01A0, 0x01A1),  # Ơ ơ
    (0x01AF, 0x01B0),  # Ư ư
    (0x0391, 0x03A9),  # Greek capitals (Delta in laboratory names)
    (0x03B1, 0x03C9),  # Greek small letters (alpha, beta, gamma in laboratory names)
    (0x1EA0, 0x1EF9),  # Vietnamese letters with tone marks (ạ ả ấ ... ỹ)
    (0x2010, 0x2027),  # dashes, curly quotes, dagger, bullet, ellipsis
    (0x2030, 0x203A),  # per mille, primes, angle quotes
    (0x2070, 0x2070),  # superscript zero
    (0x2074, 0x2079),  # superscripts four to nine (10⁹/L)
    (0x2080, 0x2089),  # subscript digits
    (0x20AB, 0x20AC),  # ₫ €
    (0x2103, 0x2103),  # ℃
    (0x2116, 0x2116),  # №
    (0x2122, 0x2122),  # ™
    (0x2190, 0x2193),  # ← ↑ → ↓
    (0x2212, 0x2212),  # minus sign
    (0x221A, 0x221A),  # √
    (0x221E, 0x221E),  # ∞
    (0x2248, 0x2248),  # ≈
    (0x2260, 0x2260),  # ≠
    (0x2264, 0x2265),  # ≤ ≥
    (0x25A0, 0x25A1),  # ■ □
    (0x25CB, 0x25CB),  # ○
    (0x25CF, 0x25CF),  # ●
    (0x2713, 0x2714),  # check marks
    (0x2717, 0x2718),  # ballot x
    (0xFFFD, 0xFFFD),  # replacement character
)


@dataclass(frozen=True, slots=True)
class FontFiles:
    """A pinned face: a regular file and, optionally, a bold one (else regular is used)."""

    regular: Path
    bold: Path | None = None


@dataclass(frozen=True, slots=True)
class _Variant:
    """One parsed style of a face: fpdf2's font object to clone and the bytes it was read from;
    for the fixed face also its prebuilt PDF objects."""

    template: TTFFont
    data: bytes
    program: FixedProgram | None = None

    def covers(self, codepoint: int) -> bool:
        return codepoint in self.template.cmap

    def width(self, codepoint: int) -> float:
        """Advance width in thousandths of the font size."""
        return float(self.template.cw[codepoint])


@dataclass(frozen=True, slots=True)
class _Face:
    family: str  # lowercase: fpdf2 strips "B"/"I" from font keys to find the family
    regular: _Variant
    bold: _Variant | None

    def variant(self, bold: bool) -> tuple[str, _Variant]:
        if bold and self.bold is not None:
            return self.family + "B", self.bold
        return self.family, self.regular


class FontSet:
    """The faces of a process, in fallback order; build with :meth:`load`."""

    def __init__(self, faces: Sequence[_Face], fingerprint: str) -> None:
        self._faces = tuple(faces)
        self.fingerprint = fingerprint  # sha256 over the font files, for provenance
        self.primary_family = faces[0].family
        self._widths: dict[tuple[str, bool], tuple[str, float]] = {}

    @classmethod
    def load(cls, primary: FontFiles, fallbacks: Iterable[FontFiles] = ()) -> FontSet:
        """Read and check every font file once; fail clearly when one is missing."""
        check_fpdf()
        files = [primary, *fallbacks]
        raw = {path: _read_font(path) for f in files for path in _paths(f)}
        digest = hashlib.sha256()
        for path in sorted(raw):
            digest.update(str(path).encode() + b"\0" + hashlib.sha256(raw[path]).digest())
        extended = _face("dejavuext", primary, raw, REPERTOIRE)
        faces = [_fixed_face("dejavu", extended), extended]
        faces.append(_face("dejavufull", primary, raw, None))
        faces += [_face(f"fallback{i}", f, raw, None) for i, f in enumerate(fallbacks)]
        return cls(faces, digest.hexdigest())

    def resolve(self, char: str, bold: bool) -> tuple[str, _Variant]:
        """The font key and variant that draws ``char``: the first face that covers it."""
        codepoint = ord(char)
        for face in self._faces:
            key, variant = face.variant(bold)
            if variant.covers(codepoint):
                return key, variant
        raise RenderError(
            f"no configured font has a glyph for U+{codepoint:04X} "
            f"({_char_name(char)}); add a fallback font that covers it to the render settings "
            "or correct the source text"
        )

    def advance(self, char: str, bold: bool) -> tuple[str, float]:
        """The font key that draws ``char`` and its width in thousandths of the font size."""
        found = self._widths.get((char, bold))
        if found is None:
            key, variant = self.resolve(char, bold)
            found = self._widths[(char, bold)] = (key, variant.width(ord(char)))
        return found

    def fixed(self, bold: bool) -> tuple[str, FixedProgram]:
        """The font key and prebuilt program of the primary (fixed) face."""
        key, variant = self._faces[0].variant(bold)
        if variant.program is None:
            raise RenderError("internal error: the primary face has no fixed program")
        return key, variant.program

    def install(self, pdf: FPDF, fontkey: str) -> None:
        """Make ``fontkey`` usable in ``pdf`` without parsing the font file again."""
        if fontkey in pdf.fonts:
            return
        for face in self._faces:
            for bold in (False, True):
                key, variant = face.variant(bold)
                if key != fontkey:
                    continue
                index = len(pdf.fonts) + 1
                if variant.program is not None:
                    font = fixed_clone(variant.template, variant.program, fontkey, index)
                else:
                    font = subset_clone(variant.template, variant.data, fontkey, index)
                pdf.fonts[fontkey] = font
                return
        raise RenderError(f"internal error: unknown font key {fontkey!r}")


def _paths(files: FontFiles) -> list[Path]:
    return [files.regular] if files.bold is None else [files.regular, files.bold]


def _read_font(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise RenderError(
            f"font file {path} is missing: install the Debian package {FONT_PACKAGE} "
            f"(apt-get install {FONT_PACKAGE}) or point the render settings at the font"
        ) from None
    except OSError as e:
        raise RenderError(f"font file {path} cannot be read ({e.strerror}); check it") from e


def _face(
    family: str,
    files: FontFiles,
    raw: dict[Path, bytes],
    presubset: tuple[tuple[int, int], ...] | None,
) -> _Face:
    def variant(path: Path, style: str) -> _Variant:
        data = raw[path] if presubset is None else _presubset(raw[path], path, presubset)
        return _Variant(template=_parse(data, path, family, style), data=data)

    bold = variant(files.bold, "B") if files.bold is not None else None
    return _Face(family=family, regular=variant(files.regular, ""), bold=bold)


def _fixed_face(family: str, source: _Face) -> _Face:
    """``source`` cut to :data:`CORE`, with its PDF objects serialised once."""

    def variant(source: _Variant, style: str) -> _Variant:
        path = Path(f"<{source.template.fontkey} cut to the fixed subset>")
        data = _presubset(source.data, path, CORE, glyph_names=False)
        template = _parse(data, path, family, style)
        return _Variant(template=template, data=data, program=build_fixed_program(template, data))

    bold = variant(source.bold, "B") if source.bold is not None else None
    return _Face(family=family, regular=variant(source.regular, ""), bold=bold)


def _presubset(
    data: bytes, path: Path, ranges: tuple[tuple[int, int], ...], glyph_names: bool = True
) -> bytes:
    options = ft_subset.Options()
    options.hinting = False  # unused by PDF viewers' own rasterisers; a third of DejaVu's size
    options.layout_features = []
    options.drop_tables += ["GSUB", "GPOS", "GDEF", "kern", "FFTM", "hdmx", "MATH"]
    # fpdf2 addresses glyphs by name when it subsets again; an embedded program needs no names.
    options.glyph_names = glyph_names
    options.notdef_outline = True
    options.recommended_glyphs = True
    try:
        font = ttLib.TTFont(BytesIO(data), recalcTimestamp=False)
        subsetter = ft_subset.Subsetter(options)
        subsetter.populate(unicodes=[c for lo, hi in ranges for c in range(lo, hi + 1)])
        subsetter.subset(font)
        out = BytesIO()
        font.save(out)
    except Exception as e:  # fontTools raises many unrelated types
        raise RenderError(f"font file {path} is not a usable TrueType font: {e}") from e
    return out.getvalue()


def _parse(data: bytes, path: Path, family: str, style: str) -> TTFFont:
    # fpdf2 only needs a host document for the font's index and its colour-font switch.
    host = FPDF()
    host.render_color_fonts = False
    try:
        return TTFFont(host, cast(Path, BytesIO(data)), family + style, style)
    except Exception as e:  # fontTools raises many unrelated types
        raise RenderError(f"font file {path} is not a usable TrueType font: {e}") from e


def _char_name(char: str) -> str:
    return unicodedata.name(char, "unnamed character")

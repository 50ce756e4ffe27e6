"""Fonts for the discharge summary: loaded, checked and pre-subset once per process.

fpdf2 parses a TrueType file on every ``add_font`` and subsets it again on every ``output``. Both
are the bulk of a document's CPU time with a 750 kB font like DejaVu Sans, so :class:`FontSet`
does the expensive part once:

* the primary face is DejaVu Sans (regular and bold) **pre-subset** to :data:`REPERTOIRE`
  (Latin, Vietnamese, Greek, punctuation and the symbols a medical record uses), without
  hinting, OpenType layout tables or kerning (fpdf2 draws without shaping, so they are unused);
* fpdf2's parsed font object (character map, widths, descriptor) is built once per face and
  cloned into each document with a fresh subset map and a fresh fontTools handle, because
  fpdf2's subsetter edits the fontTools object in place;
* any character outside the repertoire falls back, in order, to the complete DejaVu Sans and to
  the configured fallback fonts; those faces are added to a document only when it uses them.

A character that no face covers raises :class:`RenderError`: text never silently disappears.
"""

from __future__ import annotations

import copy
import hashlib
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import IO, cast

from fontTools import subset as ft_subset
from fontTools import ttLib
from fpdf import FPDF
from fpdf.fonts import SubsetMap, TTFFont

from archive.errors import RenderError

FONT_PACKAGE = "fonts-dejavu-core"

# Unicode blocks kept in the pre-subset primary face. Everything else DejaVu Sans has is still
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


@dataclass(frozen=True, slots=True)
class FontFiles:
    """A pinned face: a regular file and, optionally, a bold one (else regular is used)."""

    regular: Path
    bold: Path | None = None


@dataclass(frozen=True, slots=True)
class _Variant:
    """One parsed style of a face: fpdf2's font object to clone and the bytes it was read from."""

    template: TTFFont
    data: bytes

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
        files = [primary, *fallbacks]
        raw = {path: _read_font(path) for f in files for path in _paths(f)}
        digest = hashlib.sha256()
        for path in sorted(raw):
            digest.update(str(path).encode() + b"\0" + hashlib.sha256(raw[path]).digest())
        faces = [_face("dejavu", primary, raw, presubset=True)]
        faces.append(_face("dejavufull", primary, raw, presubset=False))
        faces += [_face(f"fallback{i}", f, raw, False) for i, f in enumerate(fallbacks)]
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

    def install(self, pdf: FPDF, fontkey: str) -> None:
        """Make ``fontkey`` usable in ``pdf`` without parsing the font file again."""
        if fontkey in pdf.fonts:
            return
        for face in self._faces:
            for bold in (False, True):
                key, variant = face.variant(bold)
                if key == fontkey:
                    pdf.fonts[fontkey] = _clone(variant, fontkey, index=len(pdf.fonts) + 1)
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


def _face(family: str, files: FontFiles, raw: dict[Path, bytes], presubset: bool) -> _Face:
    def variant(path: Path, style: str) -> _Variant:
        data = _presubset(raw[path], path) if presubset else raw[path]
        return _Variant(template=_parse(data, path, family, style), data=data)

    bold = variant(files.bold, "B") if files.bold is not None else None
    return _Face(family=family, regular=variant(files.regular, ""), bold=bold)


def _presubset(data: bytes, path: Path) -> bytes:
    options = ft_subset.Options()
    options.hinting = False  # unused by PDF viewers' own rasterisers; a third of DejaVu's size
    options.layout_features = []
    options.drop_tables += ["GSUB", "GPOS", "GDEF", "kern", "FFTM", "hdmx", "MATH"]
    options.glyph_names = True  # fpdf2 addresses glyphs by name when it subsets again
    options.notdef_outline = True
    options.recommended_glyphs = True
    try:
        font = ttLib.TTFont(BytesIO(data), recalcTimestamp=False)
        subsetter = ft_subset.Subsetter(options)
        subsetter.populate(unicodes=[c for lo, hi in REPERTOIRE for c in range(lo, hi + 1)])
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


def _clone(variant: _Variant, fontkey: str, index: int) -> TTFFont:
    # Shares the read-only character map and widths; everything fpdf2 mutates while writing one
    # document (subset map, descriptor object, fontTools tables) is fresh.
    font = copy.copy(variant.template)
    font.i = index
    font.fontkey = fontkey
    stream: IO[bytes] = BytesIO(variant.data)
    font.ttfont = ttLib.TTFont(stream, recalcTimestamp=False, lazy=True)
    font.desc = copy.copy(variant.template.desc)
    font.subset = SubsetMap(font)
    font.missing_glyphs = []
    font.biggest_size_pt = 0
    font._hbfont = None
    return font


def _char_name(char: str) -> str:
    return unicodedata.name(char, "unnamed character")

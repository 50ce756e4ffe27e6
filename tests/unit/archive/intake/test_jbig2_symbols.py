"""JBIG2 symbol coding declares counts before any bitmap (symbols in a dictionary, symbols placed
in a text region; patterns in a halftone's dictionary), and jbig2dec allocates or loops by them:
a few bytes declaring four billion symbols are refused before conversion, bounded by the largest
page the intake accepts; an ordinary symbol-coded page passes."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest

from archive.core.intake_section import IntakeSettings
from archive.intake import ScanProblem, inspect_scan
from archive.sources import QuarantineReason
from tests.support.jbig2 import pdf_with_image, segment

LIMITS = IntakeSettings()
SMALL: dict[str, Any] = {"width": 100, "height": 100}


def _reason(found: int | ScanProblem) -> QuarantineReason:
    assert isinstance(found, ScanProblem), found
    return found.reason


def _symbols(exported: int, new: int, *, huffman: bool = False, template: int = 0) -> bytes:
    """A symbol dictionary's data header (T.88 7.4.2.1): flags, AT flags (arithmetic coding:
    8 bytes for template 0, else 2), SDNUMEXSYMS, SDNUMNEWSYMS; then a few coded bytes."""
    flags = (1 if huffman else 0) | template << 10
    at = b"" if huffman else bytes(8 if template == 0 else 2)
    return struct.pack(">H", flags) + at + struct.pack(">II", exported, new) + b"\x00" * 4


def _text_region(instances: int, *, huffman: bool = False) -> bytes:
    """A text region's data header (T.88 7.4.3.1) on a 100 x 100 region: region information,
    flags (Huffman flags when SBHUFF), SBNUMINSTANCES."""
    info = struct.pack(">IIIIB", 100, 100, 0, 0, 0)
    flags = struct.pack(">H", 1 if huffman else 0) + (b"\x00\x00" if huffman else b"")
    return info + flags + struct.pack(">I", instances) + b"\x00" * 4


def _page(*segments: tuple[int, bytes]) -> bytes:
    data = segment(0, 48, struct.pack(">IIIIBH", 100, 100, 0, 0, 0, 0))
    for number, (kind, body) in enumerate(segments, start=1):
        data += segment(number, kind, body)
    return data + segment(len(segments) + 1, 49, b"")


SYMBOL_LIMIT = LIMITS.max_pixels // 512


@pytest.mark.parametrize(
    ("data", "globals_"),
    [
        pytest.param(_page((0, _symbols(1, 2**32 - 1))), None, id="new symbols"),
        pytest.param(
            _page((0, _symbols(2**32 - 1, 10, huffman=True))), None, id="exported symbols"
        ),
        pytest.param(
            _page((0, _symbols(5, SYMBOL_LIMIT + 1, template=1))), None, id="template 1 layout"
        ),
        pytest.param(
            _page(*[(0, _symbols(SYMBOL_LIMIT // 4, SYMBOL_LIMIT // 4))] * 3),
            None,
            id="dictionaries under the limit one by one",
        ),
        pytest.param(
            _page(),
            segment(0, 0, _symbols(SYMBOL_LIMIT, SYMBOL_LIMIT, huffman=True)),
            id="in the globals",
        ),
        pytest.param(_page((6, _text_region(2**32 - 1))), None, id="text region instances"),
        pytest.param(
            _page((4, _text_region(SYMBOL_LIMIT + 1, huffman=True))),
            None,
            id="Huffman text region",
        ),
    ],
)
def test_a_jbig2_image_declaring_too_many_symbols_is_quarantined(
    tmp_path: Path, data: bytes, globals_: bytes | None
) -> None:
    """A few bytes of symbol dictionary declare four billion symbols: jbig2dec allocates an
    entry for each before decoding one. Bounded by the largest page we accept."""
    params: dict[str, object] | None = None if globals_ is None else {"JBIG2Globals": globals_}
    path = pdf_with_image(
        tmp_path / "s.pdf", **SMALL, filter_="/JBIG2Decode", data=data, params=params
    )
    found = inspect_scan(path, LIMITS)
    assert _reason(found) is QuarantineReason.OVERSIZED_SCAN
    assert isinstance(found, ScanProblem)
    assert "JBIG2 symbols" in found.detail
    assert "max_page_megapixels" in found.detail


def test_a_jbig2_pattern_dictionary_is_judged_by_its_collective_bitmap(tmp_path: Path) -> None:
    """A halftone's patterns are decoded as one bitmap (GRAYMAX + 1) x HDPW wide (7.4.4.1)."""
    patterns = struct.pack(">BBBI", 0, 255, 255, 2**32 - 1) + b"\x00" * 4
    data = _page((16, patterns))
    path = pdf_with_image(tmp_path / "p.pdf", **SMALL, filter_="/JBIG2Decode", data=data)
    found = inspect_scan(path, LIMITS)
    assert _reason(found) is QuarantineReason.OVERSIZED_SCAN


def test_a_truncated_symbol_dictionary_is_unreadable(tmp_path: Path) -> None:
    data = _page((0, _symbols(10, 10)[:6]))
    path = pdf_with_image(tmp_path / "t.pdf", **SMALL, filter_="/JBIG2Decode", data=data)
    assert _reason(inspect_scan(path, LIMITS)) is QuarantineReason.UNREADABLE_SCAN


def test_an_ordinary_symbol_coded_page_passes(tmp_path: Path) -> None:
    """A text page: a few hundred distinct glyphs in the globals and the page, a few thousand
    placed, a small halftone pattern dictionary."""
    data = _page(
        (0, _symbols(400, 400)),
        (16, struct.pack(">BBBI", 0, 4, 4, 15) + b"\x00" * 4),
        (6, _text_region(3_000)),
    )
    globals_ = segment(0, 0, _symbols(200, 200, huffman=True))
    path = pdf_with_image(
        tmp_path / "ok.pdf",
        **SMALL,
        filter_="/JBIG2Decode",
        data=data,
        params={"JBIG2Globals": globals_},
    )
    assert inspect_scan(path, LIMITS) == 1

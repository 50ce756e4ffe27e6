"""Looking at a scan before converting it: every file the converter cannot take is named with its
quarantine reason, each limit of the ``[intake]`` section holds, and the odd but legal encodings
of scanners (CCITT G4 TIFF, CMYK JPEG, JBIG2 in a PDF, multi-page TIFF) pass."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import img2pdf
import pikepdf
import pytest
from PIL import Image

from archive.core.intake_section import IntakeSettings
from archive.intake import ScanProblem, inspect_scan
from archive.sources import QuarantineReason
from tests.support.jbig2 import A4, jbig2, pdf_with_image, segment

LIMITS = IntakeSettings()


def _pdf(path: Path, *, pages: int = 1, size: tuple[float, float] = A4, **save: object) -> Path:
    with pikepdf.new() as pdf:
        for _ in range(pages):
            pdf.add_blank_page(page_size=size)
        pdf.save(path, **save)  # type: ignore[arg-type]
    return path


def _image(path: Path, mode: str = "L", *, size: tuple[int, int] = (1240, 1754), **kw: Any) -> Path:
    Image.new(mode, size).save(path, **({"dpi": (150, 150)} | kw))
    return path


def _reason(found: int | ScanProblem) -> str:
    assert isinstance(found, ScanProblem), found
    return found.reason.value


@pytest.mark.parametrize(
    "encryption",
    [pikepdf.Encryption(owner="o", user="u"), pikepdf.Encryption(owner="o", user="")],
    ids=["user-password", "owner-password-only"],
)
def test_an_encrypted_pdf_is_quarantined(tmp_path: Path, encryption: pikepdf.Encryption) -> None:
    found = inspect_scan(_pdf(tmp_path / "a.pdf", encryption=encryption), LIMITS)
    assert _reason(found) == QuarantineReason.ENCRYPTED_SCAN


def test_a_pdf_without_pages_and_an_empty_file_are_quarantined(tmp_path: Path) -> None:
    assert _reason(inspect_scan(_pdf(tmp_path / "a.pdf", pages=0), LIMITS)) == "empty-scan"
    (tmp_path / "b.jpg").write_bytes(b"")
    assert _reason(inspect_scan(tmp_path / "b.jpg", LIMITS)) == "empty-scan"


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("a.pdf", b"%PDF-1.7\n1 0 obj <<>> garbage"),
        ("a.jpg", b"\xff\xd8\xff\xe0 not really a jpeg"),
        ("a.tiff", b"II*\x00\x08\x00\x00\x00\xff\xff"),
        ("a.png", b"\x89PNG\r\n\x1a\n"),  # not a scan suffix
    ],
)
def test_a_damaged_file_is_unreadable(tmp_path: Path, name: str, data: bytes) -> None:
    (tmp_path / name).write_bytes(data)
    assert _reason(inspect_scan(tmp_path / name, LIMITS)) == "unreadable-scan"


def test_a_truncated_image_is_unreadable(tmp_path: Path) -> None:
    data = _image(tmp_path / "a.jpg", "RGB").read_bytes()
    (tmp_path / "a.jpg").write_bytes(data[: len(data) // 2])
    assert _reason(inspect_scan(tmp_path / "a.jpg", LIMITS)) == "unreadable-scan"


@pytest.mark.parametrize(
    ("name", "mode", "kw"),
    [
        ("g4.tiff", "1", {"compression": "group4"}),
        ("cmyk.jpg", "CMYK", {}),
        ("palette.tiff", "P", {}),
        ("alpha.tiff", "RGBA", {}),
    ],
)
def test_odd_but_legal_scanner_images_pass(
    tmp_path: Path, name: str, mode: str, kw: dict[str, Any]
) -> None:
    assert inspect_scan(_image(tmp_path / name, mode, **kw), LIMITS) == 1


@pytest.mark.parametrize("mode", ["I;16", "I", "F"])
def test_an_image_deeper_than_8_bits_is_quarantined_not_failed_at_conversion(
    tmp_path: Path, mode: str
) -> None:
    found = inspect_scan(_image(tmp_path / "deep.tiff", mode), LIMITS)
    assert _reason(found) == "unreadable-scan"
    assert isinstance(found, ScanProblem)
    assert "8 bits" in found.detail


def test_a_multi_page_tiff_counts_its_pages(tmp_path: Path) -> None:
    pages = [Image.new("L", (620, 877)) for _ in range(3)]
    pages[0].save(tmp_path / "m.tiff", save_all=True, append_images=pages[1:], dpi=(75, 75))
    assert inspect_scan(tmp_path / "m.tiff", LIMITS) == 3


def test_jbig2_in_a_pdf_passes(tmp_path: Path) -> None:
    path = pdf_with_image(tmp_path / "j.pdf", width=2480, height=3508, filter_="/JBIG2Decode")
    assert inspect_scan(path, LIMITS) == 1


# -- each limit of [intake], with its reason ---------------------------------------------------


def test_max_file_mib(tmp_path: Path) -> None:
    path = _image(tmp_path / "a.tiff")
    with path.open("r+b") as f:
        f.truncate(1024 * 1024 + 1)  # sparse: the size is what counts, checked before reading
    found = inspect_scan(path, IntakeSettings(max_file_mib=1))
    assert _reason(found) == "oversized-scan"
    assert isinstance(found, ScanProblem)
    assert "max_file_mib" in found.detail


def test_max_pages_for_pdf_and_tiff(tmp_path: Path) -> None:
    limits = IntakeSettings(max_pages=2)
    assert inspect_scan(_pdf(tmp_path / "two.pdf", pages=2), limits) == 2
    assert _reason(inspect_scan(_pdf(tmp_path / "three.pdf", pages=3), limits)) == "oversized-scan"
    pages = [Image.new("L", (62, 87)) for _ in range(3)]
    pages[0].save(tmp_path / "m.tiff", save_all=True, append_images=pages[1:], dpi=(75, 75))
    found = inspect_scan(tmp_path / "m.tiff", limits)
    assert _reason(found) == "oversized-scan"
    assert isinstance(found, ScanProblem)
    assert "max_pages" in found.detail


def test_max_page_side_pt(tmp_path: Path) -> None:
    limits = IntakeSettings(max_page_side_pt=1000)
    assert inspect_scan(_pdf(tmp_path / "a4.pdf"), limits) == 1
    found = inspect_scan(_pdf(tmp_path / "huge.pdf", size=(595, 1200)), limits)
    assert _reason(found) == "oversized-scan"
    # The default: a 14,400 pt (5 m) poster is no paper record.
    huge = _pdf(tmp_path / "poster.pdf", size=(14_400, 14_400))
    assert _reason(inspect_scan(huge, LIMITS)) == "oversized-scan"


def test_max_page_side_pt_at_the_images_resolution(tmp_path: Path) -> None:
    # The same 1240x1754 pixels: A4 at 150 dpi, over 3 m at 3 dpi.
    assert inspect_scan(_image(tmp_path / "a4.tiff"), LIMITS) == 1
    low = _image(tmp_path / "low.tiff", dpi=(3, 3))
    assert _reason(inspect_scan(low, LIMITS)) == "oversized-scan"


def test_max_page_megapixels_in_an_image_and_in_a_pdf(tmp_path: Path) -> None:
    limits = IntakeSettings(max_page_megapixels=3)
    assert inspect_scan(_image(tmp_path / "ok.tiff"), limits) == 1  # 2.2 Mpx
    found = inspect_scan(_image(tmp_path / "big.tiff", size=(2000, 1501)), limits)
    assert _reason(found) == "oversized-scan"
    assert isinstance(found, ScanProblem)
    assert "max_page_megapixels" in found.detail
    # A pixel bomb inside a PDF of an ordinary page size (JBIG2 compresses blank area to bytes).
    bomb = pdf_with_image(
        tmp_path / "bomb.pdf", width=200_000, height=200_000, filter_="/JBIG2Decode"
    )
    assert _reason(inspect_scan(bomb, LIMITS)) == "oversized-scan"


# -- JBIG2 and CCITT: judged by the sizes their data declares, not the image dictionary's -------

SMALL: dict[str, Any] = {"width": 100, "height": 100}


@pytest.mark.parametrize(
    ("case", "filter_", "data", "params"),
    [
        ("JBIG2 page of 60,000 x 60,000", "/JBIG2Decode", jbig2((60_000, 60_000)), None),
        ("JBIG2 region", "/JBIG2Decode", jbig2((100, 100), (60_000, 60_000)), None),
        (
            "JBIG2 striped page, unknown height",
            "/JBIG2Decode",
            jbig2((100, 0xFFFFFFFF), (100, 100), stripe_end=2_000_000_000),
            None,
        ),
        (
            "JBIG2 globals",
            "/JBIG2Decode",
            jbig2((100, 100)),
            {"JBIG2Globals": segment(0, 36, struct.pack(">IIIIB", 70_000, 70_000, 0, 0, 0))},
        ),
        ("CCITT columns", "/CCITTFaxDecode", b"\x00" * 16, {"K": -1, "Columns": 2_000_000_000}),
        ("CCITT rows", "/CCITTFaxDecode", b"\x00" * 16, {"K": -1, "Columns": 100, "Rows": 10**9}),
    ],
)
def test_a_bilevel_image_declaring_a_huge_bitmap_is_quarantined(
    tmp_path: Path, case: str, filter_: str, data: bytes, params: dict[str, object] | None
) -> None:
    """The image dictionary says 100 x 100; the decoder would allocate what the data (JBIG2
    segments) or the decode parameters (CCITT) declare."""
    path = pdf_with_image(tmp_path / "h.pdf", **SMALL, filter_=filter_, data=data, params=params)
    found = inspect_scan(path, LIMITS)
    assert _reason(found) == "oversized-scan", case
    assert isinstance(found, ScanProblem)
    assert "max_page_megapixels" in found.detail


@pytest.mark.parametrize(
    ("case", "filter_", "data"),
    [
        ("behind another filter", ["/LZWDecode", "/JBIG2Decode"], jbig2((100, 100))),
        ("behind damaged Flate", ["/FlateDecode", "/JBIG2Decode"], jbig2((100, 100))),
        (
            "behind a Flate bomb",
            ["/FlateDecode", "/JBIG2Decode"],
            zlib.compress(jbig2((100, 100)) + b"\x00" * (65 * 1024 * 1024), 9),
        ),
        ("unknown segment length", "/JBIG2Decode", struct.pack(">IBBBI", 0, 38, 0, 1, 2**32 - 1)),
        ("truncated segment", "/JBIG2Decode", jbig2((100, 100))[:15]),
        ("malformed reference count", "/JBIG2Decode", struct.pack(">IBBBI", 0, 48, 5 << 5, 1, 0)),
    ],
)
def test_a_bilevel_image_whose_size_cannot_be_read_is_quarantined(
    tmp_path: Path, case: str, filter_: str | list[str], data: bytes
) -> None:
    path = pdf_with_image(tmp_path / "u.pdf", **SMALL, filter_=filter_, data=data)
    found = inspect_scan(path, LIMITS)
    assert _reason(found) == "unreadable-scan", case
    assert isinstance(found, ScanProblem)
    assert "cannot be read without decoding" in found.detail


def test_ordinary_jbig2_and_ccitt_scans_pass(tmp_path: Path) -> None:
    """Sizes that agree pass: a hand-built JBIG2 page, and a real CCITT G4 page from Pillow
    wrapped by img2pdf (what a bilevel TIFF scan becomes)."""
    path = pdf_with_image(tmp_path / "j.pdf", width=2480, height=3508, filter_="/JBIG2Decode")
    assert inspect_scan(path, LIMITS) == 1
    g4 = _image(tmp_path / "g4.tiff", "1", size=(2480, 3508), compression="group4")
    (tmp_path / "g4.pdf").write_bytes(img2pdf.convert(str(g4)))
    with pikepdf.open(tmp_path / "g4.pdf") as pdf:  # the codec the test means to pass
        [image] = [o for o in pdf.objects if isinstance(o, pikepdf.Stream) and "/Width" in o]
        assert "/CCITTFaxDecode" in str(image.stream_dict.get("/Filter"))
    assert inspect_scan(tmp_path / "g4.pdf", LIMITS) == 1

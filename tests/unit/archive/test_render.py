"""The discharge-summary renderer: PDF/A-3b structure, Vietnamese text, reproducibility."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import unicodedata
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from fontTools import ttLib
from fpdf.output import OutputProducer
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader

from archive.core.errors import RenderError
from archive.render import (
    CORE,
    REPERTOIRE,
    RenderedDocument,
    Renderer,
    RenderSettings,
    SummaryPdf,
    check_pdfa3b,
    extract_embedded_data,
    pdffonts_check,
    qpdf_check,
)
from archive.render import output as render_output
from archive.render import program as render_program
from archive.sources.model import FacilitySignature
from tests.support.fhir import (
    ALL_VIETNAMESE,
    COURSE,
    ENCOUNTER_ID,
    FACILITY_CODE,
    ICD10_CODES,
    PATIENT_NAME,
    RECORD_NUMBER,
    canonical,
    example_bundle,
)

CREATED = datetime(2025, 3, 8, 23, 0, tzinfo=timezone(timedelta(hours=7)))


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer.create()


@pytest.fixture(scope="module")
def example(renderer: Renderer) -> RenderedDocument:
    bundle = example_bundle()
    return renderer.render(bundle, canonical(bundle), created_at=CREATED)


def render(renderer: Renderer, bundle: dict[str, Any]) -> RenderedDocument:
    return renderer.render(bundle, canonical(bundle), created_at=CREATED)


def pdftotext(pdf: bytes, page: int | None = None) -> str:
    pages = ["-f", str(page), "-l", str(page)] if page else []
    done = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", *pages, "-", "-"], input=pdf, capture_output=True, check=True
    )
    return " ".join(done.stdout.decode().split())  # one space between words, across lines


def test_example_is_a_two_page_pdfa3b(example: RenderedDocument) -> None:
    report = check_pdfa3b(example.pdf)
    assert report.passed, report.reason
    assert example.pages == 2
    assert example.pdf_sha256 == hashlib.sha256(example.pdf).hexdigest()


def test_qpdf_and_pdffonts_accept_the_example(example: RenderedDocument) -> None:
    assert qpdf_check(example.pdf).passed, qpdf_check(example.pdf).reason
    fonts = pdffonts_check(example.pdf)
    assert fonts.passed, fonts.reason
    assert fonts.reason.startswith("2 font(s)")  # regular + bold: Vietnamese needs no fallback


def test_text_is_extractable_with_diacritics(example: RenderedDocument) -> None:
    text = pdftotext(example.pdf)
    assert PATIENT_NAME in text
    assert "Bệnh viện Đa khoa Thành phố Hồ Chí Minh" in text
    assert "TÓM TẮT HỒ SƠ BỆNH ÁN" in text
    for code in ICD10_CODES:
        assert code in text
    assert "Viêm phổi, không đặc hiệu" in text
    assert "Trang 1/2" in pdftotext(example.pdf, page=1)
    assert "Trang 2/2" in pdftotext(example.pdf, page=2)
    assert f"Encounter: {ENCOUNTER_ID}" in text


def test_sections_print_in_the_discharge_summary_order(example: RenderedDocument) -> None:
    text = pdftotext(example.pdf)
    headings = [
        "HÀNH CHÍNH",
        "VÀO VIỆN",
        "CHẨN ĐOÁN",
        "THỦ THUẬT",
        "THUỐC ĐIỀU TRỊ",
        "CẬN LÂM SÀNG",
        "DIỄN BIẾN LÂM SÀNG",
        "KẾT QUẢ ĐIỀU TRỊ",
        "BÁC SĨ ĐIỀU TRỊ",
    ]
    positions = [text.index(h) for h in headings]
    assert positions == sorted(positions)
    assert "Đỡ, giảm / Improved" in text
    assert "Về nhà / Home" in text
    assert "BS.CKII Trần Văn Đức" in text
    assert "14,2 (H)" in text  # decimal comma, interpretation flag


def test_every_vietnamese_letter_survives(renderer: Renderer) -> None:
    doc = render(renderer, example_bundle(course=ALL_VIETNAMESE))
    text = pdftotext(doc.pdf)
    for word in ALL_VIETNAMESE.split():
        assert word in text
    assert pdffonts_check(doc.pdf).reason.startswith("2 font(s)")


def test_decomposed_input_is_drawn_composed(renderer: Renderer) -> None:
    bundle = example_bundle()
    bundle["entry"][1]["resource"]["name"][0]["text"] = unicodedata.normalize("NFD", PATIENT_NAME)
    text = pdftotext(render(renderer, bundle).pdf)
    assert PATIENT_NAME in text  # the fixture's name is NFC


def test_embedded_bundle_is_the_canonical_bytes(example: RenderedDocument) -> None:
    data = canonical(example_bundle())
    assert extract_embedded_data(example.pdf) == data
    assert example.data_sha256 == hashlib.sha256(data).hexdigest()


def test_same_input_same_bytes_and_created_at_matters(
    renderer: Renderer, example: RenderedDocument
) -> None:
    bundle = example_bundle()
    again = renderer.render(bundle, canonical(bundle), created_at=CREATED)
    assert again.pdf == example.pdf
    fresh = Renderer.create().render(bundle, canonical(bundle), created_at=CREATED)
    assert fresh.pdf == example.pdf  # fonts are pre-subset deterministically in every process
    later = renderer.render(bundle, canonical(bundle), created_at=CREATED + timedelta(seconds=1))
    assert later.pdf != example.pdf
    same_instant = renderer.render(bundle, canonical(bundle), created_at=CREATED.astimezone(UTC))
    assert same_instant.pdf != example.pdf  # the zone is part of the dates written


def test_long_note_flows_over_pages_with_page_numbers(renderer: Renderer) -> None:
    course = "\n".join([COURSE] * 14 + ["Kết thúc ghi chép."])
    doc = render(renderer, example_bundle(course=course))
    assert doc.pages >= 3
    for page in range(1, doc.pages + 1):
        assert f"Trang {page}/{doc.pages}" in pdftotext(doc.pdf, page=page)
    assert "Kết thúc ghi chép." in pdftotext(doc.pdf, page=doc.pages)
    assert check_pdfa3b(doc.pdf).passed


def test_text_that_looks_like_a_page_alias_prints_as_is(renderer: Renderer) -> None:
    text = pdftotext(render(renderer, example_bundle(course="Ghi chú {nb} giữ nguyên")).pdf)
    assert "Ghi chú {nb} giữ nguyên" in text


def test_table_row_taller_than_a_page_continues_overleaf(renderer: Renderer) -> None:
    bundle = example_bundle()
    bundle["entry"][9]["resource"]["dosageInstruction"][0]["text"] = "liều " * 2500 + "HẾT"
    doc = render(renderer, bundle)
    assert doc.pages >= 4
    assert "HẾT" in pdftotext(doc.pdf)


def test_missing_optional_fields_render_as_dash(renderer: Renderer) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": {"resourceType": "Encounter", "id": "enc-bare"}}],
    }
    doc = render(renderer, bundle)
    assert check_pdfa3b(doc.pdf).passed
    text = pdftotext(doc.pdf)
    assert "Bác sĩ điều trị / Attending physician —" in text
    assert text.count("—") >= 25  # every field, cell and empty section
    assert "Mã đợt điều trị / Encounter: enc-bare" in text


def test_odd_values_do_not_crash(renderer: Renderer) -> None:
    bundle = example_bundle()
    encounter, patient = bundle["entry"][0]["resource"], bundle["entry"][1]["resource"]
    encounter["period"] = {"start": "not a date", "end": 20250308}
    encounter["class"] = "IMP"
    encounter["diagnosis"].append({"condition": {"reference": "Condition/absent"}, "rank": "1"})
    patient["name"] = [{"text": 42}]
    patient["birthDate"] = "1968"
    patient["identifier"] = {"system": "urn:vn:cccd"}
    patient["address"] = [{"text": "Số\u200b 5\u0007 ngõ 3\u00ad, Hà Nội\ufeff"}]
    bundle["entry"].append({"resource": "not an object"})
    text = pdftotext(render(renderer, bundle).pdf)
    assert "not a date" in text
    assert "Số 5 ngõ 3, Hà Nội" in text


def test_metadata_carries_no_phi(example: RenderedDocument) -> None:
    reader = PdfFileReader(BytesIO(example.pdf))
    info = {str(k): str(v) for k, v in reader.trailer_view["/Info"].items()}
    xmp = reader.root["/Metadata"].data.decode()
    assert info["/Title"] == f"Tóm tắt hồ sơ bệnh án — {RECORD_NUMBER}"
    assert f"encounter:{ENCOUNTER_ID}, facility:{FACILITY_CODE}" in info["/Keywords"]
    for secret in (PATIENT_NAME, "Nguyễn", "079168001234", "HT2797912345678", "1968", "J18"):
        assert all(secret not in value for value in info.values())
        assert secret not in xmp
    spec = reader.root["/AF"][0]
    assert PATIENT_NAME not in str(spec["/Desc"])
    assert str(spec["/UF"]) == f"encounter-{ENCOUNTER_ID}.fhir.json"


def test_character_beyond_the_presubset_uses_the_full_dejavu(renderer: Renderer) -> None:
    doc = render(renderer, example_bundle(course="Bệnh nhân Иванов ★ chuyển viện"))
    assert "Иванов ★" in pdftotext(doc.pdf)
    fonts = pdffonts_check(doc.pdf)
    assert fonts.passed
    assert fonts.reason.startswith("3 font(s)")
    assert check_pdfa3b(doc.pdf).passed


def test_character_no_font_covers_is_refused(renderer: Renderer) -> None:
    with pytest.raises(RenderError, match=r"U\+4E2D"):
        render(renderer, example_bundle(course="Họ tên gốc: 中文"))


def test_missing_font_names_file_and_package(tmp_path: Path) -> None:
    missing = tmp_path / "DejaVuSans.ttf"
    with pytest.raises(RenderError, match="fonts-dejavu-core") as caught:
        Renderer.create(RenderSettings(font_regular=missing))
    assert str(missing) in str(caught.value)


def test_fonts_are_read_once_per_process(tmp_path: Path) -> None:
    regular, bold = tmp_path / "r.ttf", tmp_path / "b.ttf"
    shutil.copy(RenderSettings().font_regular, regular)
    shutil.copy(RenderSettings().font_bold, bold)
    renderer = Renderer.create(RenderSettings(font_regular=regular, font_bold=bold))
    regular.unlink()
    bold.unlink()
    for _ in range(2):
        assert render(renderer, example_bundle()).pages == 2


@pytest.mark.parametrize(
    ("bundle", "canonical_bytes", "created_at", "message"),
    [
        (example_bundle(), b"{}", datetime(2025, 3, 8), "timezone-aware"),
        (example_bundle(), b"", CREATED, "empty"),
        ({"resourceType": "Bundle", "entry": []}, b"{}", CREATED, "no Encounter"),
        ({"entry": [{"resource": {"resourceType": "Encounter"}}]}, b"{}", CREATED, "no id"),
    ],
)
def test_invalid_input_is_refused_with_a_reason(
    renderer: Renderer,
    bundle: dict[str, Any],
    canonical_bytes: bytes,
    created_at: datetime,
    message: str,
) -> None:
    with pytest.raises(RenderError, match=message):
        renderer.render(bundle, canonical_bytes, created_at=created_at)


# --- the fixed font subset and the direct text path -----------------------------------------------

# Characters a laboratory report or a foreign name brings, all inside the fixed subset (CORE).
FIXED_EXTRAS = "Men gan 2× (µmol/L), μ β-hCG α-FP ≤ 10 ≥ 5 ± 0,2 — “ổn định” ₫ ℃ № Ä ß ø"  # noqa: RUF001


@dataclass(frozen=True)
class EmbeddedFont:
    font_file: bytes  # FontFile2 stream exactly as stored (compressed)
    to_unicode: bytes
    cid_to_gid: bytes
    widths: list[Any]


def embedded_fonts(pdf: bytes) -> dict[str, EmbeddedFont]:
    """Every composite font the pages use, by /BaseFont, with its streams' stored bytes."""
    reader = PdfFileReader(BytesIO(pdf))
    found: dict[str, EmbeddedFont] = {}
    for kid in reader.root["/Pages"]["/Kids"]:
        for font in kid.get_object()["/Resources"]["/Font"].values():
            font = font.get_object()
            cid = font["/DescendantFonts"][0]
            found[str(font["/BaseFont"])] = EmbeddedFont(
                font_file=cid["/FontDescriptor"]["/FontFile2"].encoded_data,
                to_unicode=font["/ToUnicode"].encoded_data,
                cid_to_gid=cid["/CIDToGIDMap"].encoded_data,
                widths=list(cid["/W"]),
            )
    return found


def fixed_fonts(pdf: bytes) -> dict[str, EmbeddedFont]:
    # fpdf2's own subsets are all tagged MPDFAA; the fixed ones carry a tag of their own.
    return {name: f for name, f in embedded_fonts(pdf).items() if "/MPDFAA+" not in name}


def test_documents_embed_the_same_prebuilt_font_streams(
    renderer: Renderer, example: RenderedDocument
) -> None:
    other = render(renderer, example_bundle(course=ALL_VIETNAMESE + " " + FIXED_EXTRAS))
    assert " ".join(FIXED_EXTRAS.split()) in pdftotext(other.pdf)  # µ and μ kept apart
    assert pdffonts_check(other.pdf).reason.startswith("2 font(s)")
    mine, theirs = fixed_fonts(example.pdf), fixed_fonts(other.pdf)
    assert len(mine) == 2
    assert mine == theirs  # byte for byte: font programs, ToUnicode, CIDToGIDMap, widths
    assert all(font.font_file for font in mine.values())
    # The size budget: fpdf2's per-document subsets took ~15 kB per document; a fixed subset may
    # add up to 40 kB. Enlarging CORE moves this number.
    stored = sum(len(f.font_file) + len(f.to_unicode) + len(f.cid_to_gid) for f in mine.values())
    assert stored < 55_000


def test_fixed_font_maps_each_code_to_its_characters_glyph(example: RenderedDocument) -> None:
    for name, font in fixed_fonts(example.pdf).items():
        program = ttLib.TTFont(BytesIO(zlib.decompress(font.font_file)))
        cmap, order = program.getBestCmap(), program.getGlyphOrder()
        scale = 1000 / program["head"].unitsPerEm
        gids = zlib.decompress(font.cid_to_gid)
        widths = cid_widths(font.widths)
        text = zlib.decompress(font.to_unicode).decode("latin-1")
        blocks = "".join(re.findall(r"beginbfchar\n(.*?)endbfchar", text, re.DOTALL))
        pairs = re.findall(r"<([0-9A-F]{4})> <([0-9A-F]{4})>", blocks)
        assert len(pairs) > 400, name
        for code_hex, char_hex in pairs:
            code, char = int(code_hex, 16), int(char_hex, 16)
            glyph = order[int.from_bytes(gids[2 * code : 2 * code + 2], "big")]
            if char == 0:
                assert glyph == ".notdef"
                continue
            assert cmap[char] == glyph, (name, hex(char))
            assert widths[code] == round(program["hmtx"][glyph][0] * scale + 0.001), hex(char)


def cid_widths(w: list[Any]) -> dict[int, int]:
    """A CIDFont /W array (``c [w ...]`` and ``c_first c_last w`` entries) as code -> width."""
    out: dict[int, int] = {}
    i = 0
    while i < len(w):
        if isinstance(w[i + 1], generic.ArrayObject):
            out.update((w[i] + n, int(width)) for n, width in enumerate(w[i + 1]))
            i += 2
        else:
            out.update((c, int(w[i + 2])) for c in range(w[i], w[i + 1] + 1))
            i += 3
    return out


def test_fixed_subset_lies_within_the_extended_repertoire() -> None:
    # The fixed face is cut from the extended one: a CORE range outside it would come out empty.
    for lo, hi in CORE:
        assert any(a <= lo and hi <= b for a, b in REPERTOIRE), f"U+{lo:04X}..U+{hi:04X}"


def test_character_outside_the_fixed_subset_is_subset_per_document(
    renderer: Renderer, example: RenderedDocument
) -> None:
    doc = render(renderer, example_bundle(course="Bệnh nhân Łódź Şahin chuyển viện"))
    assert "Bệnh nhân Łódź Şahin chuyển viện" in pdftotext(doc.pdf)
    fonts = pdffonts_check(doc.pdf)
    assert fonts.passed, fonts.reason
    assert fonts.reason.startswith("3 font(s)")  # regular, bold and the extended regular
    assert qpdf_check(doc.pdf).passed
    assert check_pdfa3b(doc.pdf).passed
    assert fixed_fonts(doc.pdf) == fixed_fonts(example.pdf)


def test_direct_text_draws_what_fpdf2_cell_draws(
    renderer: Renderer, example: RenderedDocument, monkeypatch: pytest.MonkeyPatch
) -> None:
    def through_cell(
        self: SummaryPdf,
        x: float,
        y: float,
        text: str,
        size: float,
        bold: bool = False,
        w: float = 0,
        align: str = "L",
    ) -> None:
        self._put_cell(x, y, text, size, bold, w, align)

    monkeypatch.setattr(SummaryPdf, "put", through_cell)
    with_cell = render(renderer, example_bundle())
    assert with_cell.pdf != example.pdf
    for page in (1, 2):  # same pixels, colours included
        assert raster(example.pdf, page) == raster(with_cell.pdf, page)


def raster(pdf: bytes, page: int) -> bytes:
    argv = ["pdftoppm", "-r", "100", "-gray", "-f", str(page), "-l", str(page), "-"]
    return subprocess.run(argv, input=pdf, capture_output=True, check=True).stdout


def test_same_bytes_in_another_process(example: RenderedDocument) -> None:
    code = (
        "from datetime import datetime, timedelta, timezone\n"
        "from archive.render import Renderer\n"
        "from tests.support.fhir import canonical, example_bundle\n"
        "created = datetime(2025, 3, 8, 23, 0, tzinfo=timezone(timedelta(hours=7)))\n"
        "b = example_bundle()\n"
        "print(Renderer.create().render(b, canonical(b), created_at=created).pdf_sha256)\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert done.stdout.strip() == example.pdf_sha256


def test_other_fpdf2_versions_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render_program, "FPDF_VERSION", "2.9.0")
    with pytest.raises(RenderError, match=r"fpdf2==2\.8\.9"):
        Renderer.create()


def test_fixed_font_bypassing_the_prebuilt_objects_fails_loudly(
    renderer: Renderer, example: RenderedDocument, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if fpdf2 stopped calling the overridden _add_fonts: its own subsetting is refused.
    monkeypatch.setattr(render_output.SummaryOutput, "_add_fonts", OutputProducer._add_fonts)
    with pytest.raises(RenderError, match="internals changed"):
        render(renderer, example_bundle())
    monkeypatch.undo()
    assert render(renderer, example_bundle()).pdf == example.pdf  # nothing shared was harmed


def test_a_qd130_attachment_says_what_the_facility_signature_showed(renderer: Renderer) -> None:
    bundle = example_bundle()
    note = FacilitySignature(
        status="valid", signer_subject="O=Bệnh viện Mẫu,C=VN", signer_sha256="ab" * 32
    ).describe()
    doc = renderer.render(
        bundle, b"<HOSO/>", created_at=CREATED, source_kind="qd130", source_note=note
    )
    spec = PdfFileReader(BytesIO(doc.pdf)).root["/AF"][0]
    desc = str(spec["/Desc"])
    assert "facility signature (CHUKYDONVI): valid" in desc
    assert "signer O=Bệnh viện Mẫu,C=VN" in desc
    assert f"certificate sha256 {'ab' * 32}" in desc
    assert str(spec["/UF"]).endswith(".qd130.xml")
    assert check_pdfa3b(doc.pdf).passed

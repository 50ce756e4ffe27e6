"""The discharge-summary renderer: PDF/A-3b structure, Vietnamese text, reproducibility."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader

from archive.pdfa import check_pdfa3b, extract_embedded_data
from archive.pdfa_tools import pdffonts_check, qpdf_check
from archive.render import RenderedDocument, Renderer, RenderError, RenderSettings
from tests.fixtures_fhir import (
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

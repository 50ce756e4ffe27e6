"""Structural PDF/A-3b checks: pass on what the renderer makes (signed or not), fail with the
right reason on what it must not make."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from io import BytesIO
from typing import Any

import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fpdf import FPDF
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko_certvalidator.registry import SimpleCertificateStore

from archive.core.errors import PdfaError
from archive.render import (
    PdfaReport,
    Renderer,
    RenderSettings,
    check_pdfa3b,
    extract_embedded_data,
    pdf_date,
    pdffonts_check,
    qpdf_check,
    xmp_date,
)
from archive.render.pdfa import raw_bytes
from tests.support.fhir import canonical, example_bundle

_CERT_STORE: Any = SimpleCertificateStore  # pyHanko's API is partly untyped
_GENERIC: Any = generic
CREATED = datetime(2025, 3, 8, 23, 0, tzinfo=timezone(timedelta(hours=7)))
BUNDLE = canonical(example_bundle())


@pytest.fixture(scope="module")
def rendered() -> bytes:
    return Renderer.create().render(example_bundle(), BUNDLE, created_at=CREATED).pdf


def fpdf_document(
    *, pdfa: bool = True, core_font: bool = False, relationship: str | None = "Source"
) -> bytes:
    """A one-page fpdf2 document with the pieces a test wants present or missing."""
    pdf = FPDF(enforce_compliance="PDF/A-3B" if pdfa else None)
    pdf.set_creation_date(CREATED)
    pdf.add_page()
    if core_font:
        pdf.set_font("helvetica", size=12)
    else:
        pdf.add_font("dejavu", fname=str(RenderSettings().font_regular))
        pdf.set_font("dejavu", size=12)
    pdf.cell(text="Discharge summary" if core_font else "Tóm tắt hồ sơ bệnh án")
    if relationship is not None:
        pdf.embed_file(
            bytes=BUNDLE,
            basename="encounter-x.fhir.json",
            mime_type="application/fhir+json",
            associated_file_relationship=relationship,
        )
    return bytes(pdf.output())


def update(pdf: bytes, edit: Callable[[Any], None]) -> bytes:
    """An incremental update, as signing and document timestamps append them."""
    writer: Any = IncrementalPdfFileWriter(BytesIO(pdf))
    edit(writer)
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def sign(pdf: bytes) -> bytes:
    """PAdES B-B with a throwaway self-signed certificate (structure only, not trust)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bệnh viện thử nghiệm")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    signing_cert = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    pkcs8 = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    signer = signers.SimpleSigner(
        signing_cert=signing_cert,
        signing_key=asn1_keys.PrivateKeyInfo.load(pkcs8),
        cert_registry=_CERT_STORE.from_certs([signing_cert]),
    )
    meta = signers.PdfSignatureMetadata(field_name="Signature1", subfilter=SigSeedSubFilter.PADES)
    out = signers.sign_pdf(IncrementalPdfFileWriter(BytesIO(pdf)), meta, signer=signer)
    data: bytes = out.getvalue()
    return data


def failed(report: PdfaReport) -> dict[str, str]:
    return {c.name: c.reason for c in report.failures}


def test_rendered_document_passes_every_check(rendered: bytes) -> None:
    report = check_pdfa3b(rendered)
    assert report.passed, report.reason
    names = [c.name for c in report.checks]
    assert names == [
        "header",
        "parse",
        "encryption",
        "page-tree",
        "xmp",
        "xmp-info",
        "output-intent",
        "fonts",
        "attachment",
        "actions",
        "trailer-id",
    ]
    assert "AFRelationship /Source" in report.check("attachment").reason
    assert extract_embedded_data(rendered) == BUNDLE


def test_signed_document_still_passes(rendered: bytes) -> None:
    signed = sign(rendered)
    report = check_pdfa3b(signed)
    assert report.passed, report.reason
    assert report.check("parse").reason == "2 revision(s)"
    assert "/Producer" in report.check("xmp-info").reason  # pyHanko set it in Info and XMP alike
    assert extract_embedded_data(signed) == BUNDLE
    assert qpdf_check(signed).passed
    assert pdffonts_check(signed).passed


def test_fpdf2_pdfa_document_with_attachment_passes() -> None:
    report = check_pdfa3b(fpdf_document())
    assert report.passed, report.reason
    assert report.check("xmp-info").reason == "no Info dictionary; XMP only"


def test_document_without_xmp_fails() -> None:
    report = check_pdfa3b(fpdf_document(pdfa=False))
    assert "no XMP metadata stream" in failed(report)["xmp"]
    assert "output-intent" in failed(report)
    assert report.check("fonts").passed


def test_document_without_attachment_fails() -> None:
    pdf = fpdf_document(relationship=None)
    assert "lists 0 source data files" in failed(check_pdfa3b(pdf))["attachment"]
    with pytest.raises(PdfaError, match="no usable embedded FHIR Bundle"):
        extract_embedded_data(pdf)


def test_attachment_with_another_relationship_fails() -> None:
    report = check_pdfa3b(fpdf_document(relationship="Alternative"))
    assert "/Alternative, not Source or Data" in failed(report)["attachment"]


def test_core_font_that_is_not_embedded_fails() -> None:
    pdf = fpdf_document(pdfa=False, core_font=True)
    assert failed(check_pdfa3b(pdf))["fonts"] == "font /Helvetica (/Type1) is not embedded"
    tool = pdffonts_check(pdf)
    assert not tool.passed
    assert "Helvetica" in tool.reason


def test_encrypted_document_fails() -> None:
    pdf = FPDF()
    pdf.set_encryption(owner_password="owner")
    pdf.add_page()
    report = check_pdfa3b(bytes(pdf.output()))
    assert not report.passed
    assert "encrypted" in failed(report)["encryption"]


def test_javascript_added_later_fails(rendered: bytes) -> None:
    def add_javascript(writer: Any) -> None:
        action = _GENERIC.DictionaryObject(
            {
                generic.NameObject("/S"): generic.NameObject("/JavaScript"),
                generic.NameObject("/JS"): generic.TextStringObject("app.alert(1)"),
            }
        )
        writer.root[generic.NameObject("/OpenAction")] = action
        writer.update_root()

    report = check_pdfa3b(update(rendered, add_javascript))
    assert "JavaScript" in failed(report)["actions"]


def test_info_changed_without_xmp_fails(rendered: bytes) -> None:
    def retitle(writer: Any) -> None:
        info = writer.trailer["/Info"]
        info[generic.NameObject("/Title")] = generic.TextStringObject("Another title")
        writer.mark_update(writer.trailer.raw_get("/Info"))

    report = check_pdfa3b(update(rendered, retitle))
    assert failed(report) == {"xmp-info": "Info /Title differs from XMP dc:title"}


def test_not_a_pdf_fails_without_raising() -> None:
    report = check_pdfa3b(b"%PDF-1.7\nnot really")
    assert not report.passed
    assert "parse" in failed(report)
    with pytest.raises(PdfaError):
        extract_embedded_data(b"hello")


def test_an_empty_report_is_not_a_pass() -> None:
    assert not PdfaReport(()).passed
    assert PdfaReport(()).reason == "no check ran"


def test_missing_tool_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("archive.render.pdfa_tools.shutil.which", lambda _: None)
    check = qpdf_check(b"%PDF-1.7")
    assert not check.passed
    assert "apt-get install qpdf" in check.reason


@pytest.mark.parametrize(
    ("pdf", "xmp"),
    [
        ("D:20250308230000+07'00'", "2025-03-08T23:00:00+07:00"),
        ("D:20250308160000Z", "2025-03-08T23:00:00+07:00"),
        ("D:20250308160000Z00'00'", "2025-03-08T16:00:00Z"),
        ("D:20250308", "2025-03-08T00:00:00"),
        ("D:20250308090000-07'00'", "2025-03-08T16:00:00+00:00"),
    ],
)
def test_pdf_and_xmp_dates_compare_as_instants(pdf: str, xmp: str) -> None:
    assert pdf_date(pdf) == xmp_date(xmp)


@pytest.mark.parametrize("raw", [b"abcdefghijklmnop", bytes(range(16)), b"\xfe\xff\x00A"])
def test_a_checksum_read_back_as_text_still_compares_as_bytes(raw: bytes) -> None:
    """Reproduces the demo's "string argument without an encoding" on a scanned record: pikepdf
    writes /CheckSum as a literal string, and pyHanko reads one that decodes as text as text."""
    parsed = generic.pdf_string(raw)
    assert raw_bytes(parsed) == raw

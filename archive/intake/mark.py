"""The conversion mark (Law 20/2023/QH15 art. 12, Decree 137/2024/NĐ-CP) and the embedded row.

On a PDF/A-3 from OCRmyPDF, in place (pikepdf): a visible stamp on every page, drawn by fpdf2 in
embedded DejaVu Sans and laid over the page as a form XObject, saying the document was converted
from paper, where, when and by whom; the same facts in XMP under a namespace of ours, declared as a
PDF/A extension schema (ISO 19005-3 6.6.2.3: a custom property without it breaks PDF/A); and the
manifest row as JSON, an associated file of the document (``/AF``, ``AFRelationship /Data``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO
from pathlib import Path
from typing import Final
from xml.sax.saxutils import escape

import pikepdf
from fpdf import FPDF

MARK_TITLE: Final = "BẢN ĐIỆN TỬ CHUYỂN ĐỔI TỪ HỒ SƠ GIẤY"
NAMESPACE: Final = "http://ns.emr-archive.vn/paper-conversion/1.0/"
PREFIX: Final = "emrconv"
ATTACHMENT_NAME: Final = "scan-manifest.json"
JSON_MIME: Final = "application/json"
FONT: Final = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
# (name, XMP value type, description) of each property, declared in the extension schema.
PROPERTIES: Final = (
    ("convertedFromPaper", "Boolean", "The document was converted from a paper original"),
    ("convertingFacility", "Text", "Facility code (MA_CSKCB) of the converting organisation"),
    ("convertingPerson", "Text", "The person who converted the paper record"),
    ("conversionTime", "Date", "When the record was converted"),
    ("paperRecordNumber", "Text", "The paper record's number in the facility's records room"),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversionMark:
    facility: str
    person: str
    converted_at: datetime  # tz-aware
    record_number: str

    def lines(self) -> tuple[str, ...]:
        """What the stamp says, line by line (Vietnamese, the time in its own offset)."""
        offset = self.converted_at.strftime("%z")
        return (
            MARK_TITLE,
            f"Cơ sở chuyển đổi: {self.facility} · Số lưu trữ: {self.record_number}",
            f"Thời điểm: {self.converted_at:%d/%m/%Y %H:%M} (UTC{offset[:3]}:{offset[3:]})",
            f"Người chuyển đổi: {self.person}",
        )

    def xmp_values(self) -> dict[str, str]:
        return {
            "convertedFromPaper": "True",
            "convertingFacility": self.facility,
            "convertingPerson": self.person,
            "conversionTime": self.converted_at.isoformat(),
            "paperRecordNumber": self.record_number,
        }


def apply_mark(pdf: pikepdf.Pdf, mark: ConversionMark, *, manifest: bytes, title: str) -> None:
    """Stamp every page, write the XMP (and Info) and embed ``manifest``; the caller saves."""
    stamps: dict[tuple[float, float], pikepdf.Pdf] = {}
    for page in pdf.pages:
        box = page.mediabox
        x0, y0, x1, y1 = (float(v) for v in box)
        size = (round(x1 - x0, 2), round(y1 - y0, 2))
        if size not in stamps:
            stamps[size] = pikepdf.open(BytesIO(_stamp(mark, *size)))
        page.add_overlay(stamps[size].pages[0], pikepdf.Rectangle(x0, y0, x1, y1))
    _metadata(pdf, mark, title=title)
    _attach(pdf, manifest, mark.converted_at)


def _stamp(mark: ConversionMark, width: float, height: float) -> bytes:
    """A transparent page of the scan's size with the mark in a box at its lower left."""
    doc = FPDF(unit="pt", format=(width, height))
    doc.set_auto_page_break(False)
    doc.set_margin(0)
    doc.add_font("DejaVu", fname=str(FONT))
    doc.add_page()
    size = max(5.0, min(9.0, width / 595 * 7.5))
    doc.set_font("DejaVu", size=size)
    lines = mark.lines()
    pad, leading = size * 0.6, size * 1.3
    box_w = max(doc.get_string_width(line) for line in lines) + 2 * pad
    box_h = leading * len(lines) + pad
    x, y = size * 2, height - size * 2 - box_h
    doc.set_draw_color(160, 0, 0)
    doc.set_text_color(160, 0, 0)
    doc.set_line_width(0.6)
    doc.rect(x, y, box_w, box_h)
    for i, line in enumerate(lines):
        doc.text(x + pad, y + leading * (i + 1), line)
    return bytes(doc.output())


def _metadata(pdf: pikepdf.Pdf, mark: ConversionMark, *, title: str) -> None:
    with pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=True) as meta:
        meta["dc:title"] = title
        meta["xmp:ModifyDate"] = mark.converted_at.isoformat()
        meta["xmp:MetadataDate"] = mark.converted_at.isoformat()
        # pyHanko writes its own Producer into XMP but appends to an Info one: with none, the
        # two agree after signing (PDF/A: Info equals XMP).
        if "pdf:Producer" in meta:
            del meta["pdf:Producer"]
    if "/Producer" in pdf.docinfo:
        del pdf.docinfo["/Producer"]
    xmp = pdf.Root.Metadata.read_bytes()
    end = xmp.rfind(b"</rdf:RDF>")
    if end < 0:
        raise ValueError("the XMP packet has no rdf:RDF element")
    pdf.Root.Metadata.write(xmp[:end] + _descriptions(mark).encode() + xmp[end:])


def _descriptions(mark: ConversionMark) -> str:
    values = "".join(
        f"<{PREFIX}:{name}>{escape(value)}</{PREFIX}:{name}>"
        for name, value in mark.xmp_values().items()
    )
    properties = "".join(
        '<rdf:li rdf:parseType="Resource">'
        f"<pdfaProperty:name>{name}</pdfaProperty:name>"
        f"<pdfaProperty:valueType>{kind}</pdfaProperty:valueType>"
        "<pdfaProperty:category>external</pdfaProperty:category>"
        f"<pdfaProperty:description>{escape(text)}</pdfaProperty:description>"
        "</rdf:li>"
        for name, kind, text in PROPERTIES
    )
    return (
        f'<rdf:Description rdf:about="" xmlns:{PREFIX}="{NAMESPACE}">{values}</rdf:Description>'
        '<rdf:Description rdf:about="" xmlns:pdfaExtension="http://www.aiim.org/pdfa/ns/extension/"'
        ' xmlns:pdfaSchema="http://www.aiim.org/pdfa/ns/schema#"'
        ' xmlns:pdfaProperty="http://www.aiim.org/pdfa/ns/property#">'
        '<pdfaExtension:schemas><rdf:Bag><rdf:li rdf:parseType="Resource">'
        "<pdfaSchema:schema>emr-archive paper conversion mark</pdfaSchema:schema>"
        f"<pdfaSchema:namespaceURI>{NAMESPACE}</pdfaSchema:namespaceURI>"
        f"<pdfaSchema:prefix>{PREFIX}</pdfaSchema:prefix>"
        f"<pdfaSchema:property><rdf:Seq>{properties}</rdf:Seq></pdfaSchema:property>"
        "</rdf:li></rdf:Bag></pdfaExtension:schemas></rdf:Description>"
    )


def _attach(pdf: pikepdf.Pdf, manifest: bytes, moment: datetime) -> None:
    stamp = _pdf_date(moment)
    spec = pikepdf.AttachedFileSpec(
        pdf,
        manifest,
        description="Paper record manifest row (JSON)",
        filename=ATTACHMENT_NAME,
        mime_type=JSON_MIME,
        creation_date=stamp,
        mod_date=stamp,
        relationship=pikepdf.Name.Data,
    )
    pdf.attachments[ATTACHMENT_NAME] = spec
    spec_obj = pdf.attachments[ATTACHMENT_NAME].obj
    spec_obj.EF.F.Params.CheckSum = pikepdf.String(hashlib.md5(manifest).digest())  # noqa: S324
    pdf.Root.AF = pikepdf.Array([spec_obj])


def _pdf_date(moment: datetime) -> str:
    offset = moment.strftime("%z") or "+0000"
    return f"D:{moment:%Y%m%d%H%M%S}{offset[:3]}'{offset[3:]}'"

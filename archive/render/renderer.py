"""Render an encounter's FHIR Bundle as a PDF/A-3b discharge summary with the Bundle embedded.

A person reads the pages; a machine reads the embedded data (the canonical Bundle JSON,
``application/fhir+json``, or the hospital's QĐ 130 HOSO XML byte for byte, ``application/xml``),
associated with the document as its ``/Source``. Both are covered by the signature added later.

Pure: the output depends only on the Bundle, its canonical bytes, ``created_at`` and the font
files, so the same input gives the same bytes (the document ``/ID`` is fpdf2's MD5 over the
body and the creation date). Fonts are read, subset and the primary face serialised once,
in :meth:`Renderer.create` (:mod:`archive.render.fonts`; fpdf2 internals in
:mod:`archive.render.program` and :mod:`archive.render.output`).

Metadata (Info dictionary and XMP) carries only the encounter id, the facility code and the
record number; the patient's name and other PHI appear only in the page content.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from xml.sax.saxutils import escape

from fpdf import FPDF_VERSION
from fpdf.errors import FPDFException
from pydantic import BaseModel, ConfigDict, Field

from archive.core.errors import RenderError
from archive.render.fonts import FontFiles, FontSet
from archive.render.layout import SummaryPdf
from archive.render.model import DASH, Summary, clean
from archive.render.output import SummaryOutput, assert_fixed_fonts_written
from archive.render.sections import build_summary

__all__ = ["RenderError", "RenderSettings", "RenderedDocument", "Renderer"]

FHIR_MIME = "application/fhir+json"
XML_MIME = "application/xml"
CREATOR = "emr-archive"
DEJAVU = Path("/usr/share/fonts/truetype/dejavu")


class RenderSettings(BaseModel):
    """Fonts and attachment options; proposed as ``Settings.render`` (``EMR_ARCHIVE_RENDER__*``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    font_regular: Path = Field(default=DEJAVU / "DejaVuSans.ttf", description="fonts-dejavu-core")
    font_bold: Path = Field(default=DEJAVU / "DejaVuSans-Bold.ttf", description="fonts-dejavu-core")
    fallback_fonts: tuple[Path, ...] = Field(
        default=(),
        description="TrueType files tried in order for characters DejaVu Sans lacks (e.g. CJK)",
    )
    attachment_relationship: Literal["Source", "Data"] = Field(
        default="Source", description="AFRelationship of the embedded Bundle"
    )


@dataclass(frozen=True, slots=True)
class RenderedDocument:
    pdf: bytes
    pdf_sha256: str
    data_sha256: str  # of the embedded canonical Bundle, as the catalog records it
    pages: int
    ocr_timeout_pages: int = 0  # a scan's pages Tesseract ran out of time on: no text layer


class Renderer:
    """Create once per process with :meth:`create`; :meth:`render` is then cheap and pure."""

    def __init__(self, *, settings: RenderSettings, fonts: FontSet) -> None:
        self._settings = settings
        self._fonts = fonts

    @classmethod
    def create(cls, settings: RenderSettings | None = None) -> Renderer:
        """Check fpdf2, read, check and subset the fonts; :class:`RenderError` if one is missing."""
        settings = settings or RenderSettings()
        fonts = FontSet.load(
            FontFiles(settings.font_regular, settings.font_bold),
            [FontFiles(path) for path in settings.fallback_fonts],
        )
        return cls(settings=settings, fonts=fonts)

    @property
    def font_fingerprint(self) -> str:
        """SHA-256 over the font files: same fingerprint + same input = same bytes."""
        return self._fonts.fingerprint

    def render(
        self,
        bundle: Mapping[str, Any],
        canonical: bytes,
        *,
        created_at: datetime,
        source_kind: str = "fhir",
        source_note: str | None = None,
    ) -> RenderedDocument:
        """The unsigned PDF/A-3b for one encounter Bundle; ``canonical`` is embedded verbatim:
        the canonical Bundle JSON, or for ``source_kind`` "qd130" the hospital's HOSO XML.
        ``source_note`` (e.g. what the facility's own signature showed) is appended to the
        embedded file's description."""
        if source_kind not in ("fhir", "qd130"):
            raise RenderError(f"unknown source kind {source_kind[:20]!r}: expected fhir or qd130")
        if created_at.tzinfo is None or created_at.utcoffset() is None:
            raise RenderError("created_at must be timezone-aware (e.g. +07:00 or UTC)")
        if not canonical:
            raise RenderError("the canonical Bundle bytes are empty; nothing to embed")
        created_at = created_at.replace(microsecond=0)  # PDF and XMP dates hold whole seconds
        summary = build_summary(bundle)
        if summary.encounter_id == DASH:
            raise RenderError("the Encounter has no id; quarantine the Bundle with this reason")
        try:
            pdf = self._compose(summary, canonical, created_at, source_kind, source_note)
            data = bytes(pdf.output(output_producer_class=SummaryOutput))
        except FPDFException as e:
            raise RenderError(f"fpdf2 could not produce the document: {e}") from e
        _no_missing_glyphs(pdf)
        assert_fixed_fonts_written(pdf)
        return RenderedDocument(
            pdf=data,
            pdf_sha256=hashlib.sha256(data).hexdigest(),
            data_sha256=hashlib.sha256(canonical).hexdigest(),
            pages=pdf.pages_count,
        )

    def _compose(
        self,
        summary: Summary,
        canonical: bytes,
        created_at: datetime,
        source_kind: str,
        source_note: str | None,
    ) -> SummaryPdf:
        meta = _Metadata.of(summary)
        pdf = SummaryPdf(self._fonts, summary)
        pdf.set_title(meta.title)
        pdf.set_subject(meta.subject)
        pdf.set_keywords(meta.keywords)
        pdf.set_creator(CREATOR)
        pdf.set_producer(_PRODUCER)
        pdf.set_lang("vi-VN")
        pdf.set_creation_date(created_at)
        pdf.set_xmp_metadata(meta.xmp(created_at))
        pdf.draw()
        name, digest = _file_safe(summary.encounter_id), hashlib.sha256(canonical).hexdigest()
        if source_kind == "qd130":
            basename, mime = f"encounter-{name}.qd130.xml", XML_MIME
            desc = (
                f"QĐ 130 HOSO XML of encounter {summary.encounter_id} as the facility sent it "
                f"(byte for byte, sha256 {digest})"
            )
            desc += f"; {source_note}" if source_note else ""
        else:
            basename, mime = f"encounter-{name}.fhir.json", FHIR_MIME
            desc = (
                f"FHIR R4 Bundle of encounter {summary.encounter_id} (canonical JSON, "
                f"sha256 {digest})"
            )
        pdf.embed_file(
            bytes=canonical,
            basename=basename,
            mime_type=mime,
            associated_file_relationship=self._settings.attachment_relationship,
            desc=desc,
            creation_date=created_at,
            modification_date=created_at,
            compress=True,
            # fpdf2 2.8.9 computes /CheckSum over the *compressed* bytes; the PDF spec says the
            # uncompressed file, so a correct reader would see a mismatch. The catalog's sha256
            # (also in the description) is the integrity check that counts.
            checksum=False,
        )
        return pdf


_PRODUCER = f"fpdf2 {FPDF_VERSION}"


@dataclass(frozen=True, slots=True)
class _Metadata:
    title: str
    subject: str
    keywords: str

    @classmethod
    def of(cls, summary: Summary) -> _Metadata:
        eid, facility, record = summary.encounter_id, summary.facility_code, summary.record_number
        shown = record if record != DASH else f"encounter {eid}"
        return cls(
            title=clean(f"Tóm tắt hồ sơ bệnh án — {shown}"),
            subject=clean(f"Discharge summary of encounter {eid}, facility {facility}"),
            keywords=clean(f"encounter:{eid}, facility:{facility}, hsba:{record}"),
        )

    def xmp(self, created_at: datetime) -> str:
        """XMP mirroring the Info dictionary, as PDF/A requires; fpdf2 wraps it in an xpacket."""
        stamp = created_at.isoformat(timespec="seconds")
        return f"""<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:pdf="http://ns.adobe.com/pdf/1.3/">
   <pdfaid:part>3</pdfaid:part>
   <pdfaid:conformance>B</pdfaid:conformance>
   <dc:format>application/pdf</dc:format>
   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">{escape(self.title)}</rdf:li></rdf:Alt></dc:title>
   <dc:description><rdf:Alt><rdf:li xml:lang="x-default">{escape(self.subject)}</rdf:li></rdf:Alt></dc:description>
   <dc:language><rdf:Bag><rdf:li>vi-VN</rdf:li></rdf:Bag></dc:language>
   <pdf:Keywords>{escape(self.keywords)}</pdf:Keywords>
   <pdf:Producer>{escape(_PRODUCER)}</pdf:Producer>
   <xmp:CreatorTool>{CREATOR}</xmp:CreatorTool>
   <xmp:CreateDate>{stamp}</xmp:CreateDate>
   <xmp:ModifyDate>{stamp}</xmp:ModifyDate>
   <xmp:MetadataDate>{stamp}</xmp:MetadataDate>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>"""  # noqa: E501 - one XMP property per line reads best


def _no_missing_glyphs(pdf: SummaryPdf) -> None:
    # Measuring already refused uncovered characters; this guards fpdf2 dropping one anyway.
    for font in pdf.fonts.values():
        missing = getattr(font, "missing_glyphs", [])
        if missing:
            codes = ", ".join(f"U+{c:04X}" for c in missing[:5])
            raise RenderError(f"font {font.fontkey} has no glyph for {codes}; text would be lost")


def _file_safe(identifier: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", identifier)[:64]

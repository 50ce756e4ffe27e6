"""Is the conversion mark there? What verification asks of every record converted from paper.

A record is a paper conversion when its embedded data (bound to the catalog by ``data_sha256``)
is a scan manifest of record kind ``scanned``; then its XMP must carry the conversion facts of
that row, declared by the PDF/A extension schema, and every page must show the stamp (its text is
read back by PDFium, so a mark drawn as an image or removed from a page fails). Answers in fixed
phrases: never the person's name or the record's values.
"""

from __future__ import annotations

import json
import unicodedata
from io import BytesIO
from typing import Any

import pikepdf
import pypdfium2
from defusedxml import ElementTree  # type: ignore[import-untyped]

from archive.intake.collect import RECORD_KIND, SCANNED
from archive.intake.mark import MARK_TITLE, NAMESPACE, PREFIX, PROPERTIES
from archive.render.xmp import RDF, parse_xmp

_SCHEMA_URI = "{http://www.aiim.org/pdfa/ns/schema#}namespaceURI"
_RDF_RESOURCE = RDF + "resource"


def scanned_row(embedded: bytes) -> dict[str, Any] | None:
    """The manifest row if ``embedded`` is a paper record's manifest, else None."""
    try:
        document = json.loads(embedded)
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(document, dict) or document.get(RECORD_KIND) != SCANNED:
        return None
    row = document.get("row")
    return row if isinstance(row, dict) else {}


def mark_problem(pdf: bytes, row: dict[str, Any]) -> str | None:
    """Why the conversion mark of ``row`` is missing or wrong in ``pdf``, or None if it holds."""
    try:
        with pikepdf.open(BytesIO(pdf)) as doc:
            xmp = doc.Root.Metadata.read_bytes() if "/Metadata" in doc.Root else b""
    except (pikepdf.PdfError, ValueError):
        return "the PDF cannot be read"
    problem = _xmp_problem(xmp, row)
    return problem if problem is not None else _pages_problem(pdf, row)


def _xmp_problem(xmp: bytes, row: dict[str, Any]) -> str | None:
    try:
        props = parse_xmp(xmp)
    except ValueError:
        return "the XMP metadata is missing or not well-formed"
    values = {name: props.get(f"{NAMESPACE}:{name}") for name, _, _ in PROPERTIES}
    if values["convertedFromPaper"] != "True":
        return "the XMP does not say the document was converted from paper"
    expected = {
        "convertingFacility": row.get("facility"),
        "convertingPerson": row.get("converted_by"),
        "paperRecordNumber": row.get("record_number"),
    }
    for name, value in expected.items():
        if values[name] != value:
            return f"the XMP {PREFIX}:{name} does not match the embedded manifest row"
    if not values["conversionTime"]:
        return "the XMP has no conversion time"
    if not _declared(xmp):
        return "the conversion properties are not declared as a PDF/A extension schema"
    return None


def _declared(xmp: bytes) -> bool:
    """An extension schema names our namespace (as element text, rdf:resource or attribute:
    pyHanko re-serialises the XMP when it signs)."""
    root = ElementTree.fromstring(xmp)
    for element in root.iter():
        values = [element.get(_SCHEMA_URI), element.get(_RDF_RESOURCE)]
        if element.tag == _SCHEMA_URI:
            values.append((element.text or "").strip())
        if NAMESPACE in values and element.tag in (_SCHEMA_URI, RDF + "Description"):
            return True
    return False


def _pages_problem(pdf: bytes, row: dict[str, Any]) -> str | None:
    person = _flat(str(row.get("converted_by", "")))
    try:
        document = pypdfium2.PdfDocument(pdf)
    except pypdfium2.PdfiumError:
        return "the PDF cannot be read"
    try:
        if len(document) == 0:
            return "the document has no page"
        for index in range(len(document)):
            text = _flat(document[index].get_textpage().get_text_range())
            if _flat(MARK_TITLE) not in text or person not in text:
                return f"page {index + 1} does not show the conversion mark"
    finally:
        document.close()
    return None


def _flat(text: str) -> str:
    return "".join(unicodedata.normalize("NFC", text).split())

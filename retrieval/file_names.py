"""What a record's files are called inside an export: by what the record is, never by whom.

The folder is the encounter id; the names inside say what each file holds, from the catalog's
``source_kind``: a discharge summary rendered from FHIR or from the QĐ 130 XML, or a paper record
converted by the intake. No patient name, number or date ever reaches a file name.
"""

from __future__ import annotations

from typing import Final, NamedTuple


class DocumentNames(NamedTuple):
    pdf: str  # the signed PDF/A-3b
    data: str  # the data embedded in (and signed with) it


_BY_KIND: Final = {
    "fhir": DocumentNames("discharge-summary.pdf", "fhir-bundle.json"),
    "qd130": DocumentNames("discharge-summary.pdf", "qd130-hoso.xml"),
    "scanned": DocumentNames("paper-record.pdf", "scan-manifest.json"),
}
_OTHER: Final = DocumentNames("record.pdf", "record-data.bin")


def document_names(source_kind: str) -> DocumentNames:
    """The file names of a record of ``source_kind`` (a kind this release does not know gets
    neutral names rather than a wrong one)."""
    return _BY_KIND.get(source_kind, _OTHER)


def renewed_name(pdf_name: str) -> str:
    """The export's re-timestamped copy of ``pdf_name`` (``retrieve --renew``), beside it."""
    stem, dot, suffix = pdf_name.rpartition(".")
    return f"{stem}.renewed.{suffix}" if dot else f"{pdf_name}.renewed"

"""A record's files in an export are named by what it is, from the catalog's source kind."""

from __future__ import annotations

import pytest

from retrieval.file_names import document_names


@pytest.mark.parametrize(
    ("kind", "pdf", "data"),
    [
        ("fhir", "discharge-summary.pdf", "fhir-bundle.json"),
        ("qd130", "discharge-summary.pdf", "qd130-hoso.xml"),
        ("scanned", "paper-record.pdf", "scan-manifest.json"),
        ("a-kind-of-a-later-release", "record.pdf", "record-data.bin"),
    ],
)
def test_each_kind_has_its_names(kind: str, pdf: str, data: str) -> None:
    assert document_names(kind) == (pdf, data)

"""Which source reads a directory: FHIR Bulk Data (NDJSON) or QĐ 130 XML.

By setting (``fhir`` or ``qd130``) or, with ``auto``, by what the directory holds: a Bulk Data
``manifest.json`` or ``*.ndjson`` files make it a FHIR export, ``*.xml`` files a QĐ 130 folder.
A directory holding both is refused rather than guessed: one run reads one source.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from archive.core.errors import SourceError
from archive.sources import bulk, qd130
from archive.sources.model import CollectedItem, EncounterBundle, Window
from archive.sources.qd130.page import record_model

SourceFormat = Literal["auto", "fhir", "qd130"]


def source_kind(source_dir: Path, setting: SourceFormat = "auto") -> Literal["fhir", "qd130"]:
    if setting != "auto":
        return setting
    if not source_dir.is_dir():
        raise SourceError(f"source directory {source_dir} does not exist or is not a directory")
    names = [p.name.lower() for p in source_dir.iterdir() if p.is_file()]
    fhir = any(n == bulk.MANIFEST_NAME or n.endswith(".ndjson") for n in names)
    xml = any(n.endswith(".xml") for n in names)
    if fhir and xml:
        raise SourceError(
            f"{source_dir} holds both NDJSON and XML files: keep the FHIR export and the QĐ 130 "
            "files in separate directories, or set EMR_ARCHIVE_ARCHIVE__SOURCE_FORMAT"
        )
    return "qd130" if xml else "fhir"


def collect_source(
    source_dir: Path,
    *,
    window: Window,
    setting: SourceFormat = "auto",
    on_selected: Callable[[int], None] | None = None,
    facility_certs: Path | None = None,
    signed_file_max_bytes: int = qd130.DEFAULT_LIMITS.max_signed_file_bytes,
    workers: int = 1,
) -> Iterator[CollectedItem]:
    """The chosen source's items (see :func:`archive.sources.bulk.collect` and
    :func:`archive.sources.qd130.collect`, which reads a large QĐ 130 folder on ``workers``
    processes)."""
    if source_kind(source_dir, setting) == "qd130":
        try:
            trust = qd130.load_facility_trust(facility_certs)
        except (OSError, ValueError) as e:
            raise SourceError(
                f"cannot read the facility certificates ({e}): check "
                "EMR_ARCHIVE_ARCHIVE__FACILITY_CERTS"
            ) from e
        limits = replace(qd130.DEFAULT_LIMITS, max_signed_file_bytes=signed_file_max_bytes)
        return qd130.collect(
            source_dir,
            window=window,
            limits=limits,
            trust=trust,
            on_selected=on_selected,
            workers=workers,
        )
    return bulk.collect(source_dir, window=window, on_selected=on_selected)


def page_model(bundle: EncounterBundle) -> dict[str, Any]:
    """The FHIR Bundle a record's page is rendered from: the bundle's own, or for a QĐ 130
    record the mapping of its embedded HOSO, built here in the render worker
    (:mod:`archive.sources.qd130.page`); :class:`SourceError` if that HOSO no longer reads."""
    return record_model(bundle) if bundle.source_kind == "qd130" else bundle.bundle

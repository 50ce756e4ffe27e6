"""Pair a scan directory with its manifest: one :class:`EncounterBundle` per usable paper record.

Yields what the archive run takes from any source: an :class:`EncounterBundle` of source kind
``scanned`` (its ``canonical`` bytes are the manifest row as JSON with each scan file's SHA-256,
what the PDF embeds and the catalog hashes; ``bundle`` holds the file paths and the OCR choice for
the converter), or a :class:`QuarantineEntry` for a bad row, a row without its file, a file
without its row, or a file that cannot be read. Nothing is dropped without a reason.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import unicodedata
from collections.abc import Callable, Container, Iterator
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Final

from archive.core.errors import ArchiveError, SourceError
from archive.core.intake_section import IntakeSettings
from archive.intake.inspect import SCAN_SUFFIXES, ScanProblem, inspect_scan
from archive.intake.manifest import RowProblem, ScanRow, read_manifest
from archive.sources import (
    CollectedItem,
    EncounterBundle,
    QuarantineEntry,
    QuarantineReason,
    QuarantineScope,
)

SCANNED: Final = "scanned"
"""The record kind (``EncounterBundle.source_kind``) of a digitised paper record."""
RECORD_KIND: Final = "record_kind"
MANIFEST_FORMAT: Final = 1
_ROW_TYPE: Final = "ScanManifestRow"
_HEAD_BYTES: Final = 4096

Retention = Callable[[EncounterBundle], tuple[str, datetime]]
"""A record's retention class and the end of its period (the run's classifier)."""


def collect_scans(
    scan_dir: Path,
    manifest: Path,
    *,
    tz: tzinfo,
    ocr: bool,
    limits: IntakeSettings,
    retention: Retention | None = None,
    now: datetime | None = None,
    catalogued: Container[str] = frozenset(),
) -> Iterator[CollectedItem]:
    """Every manifest row as a bundle or a quarantine entry, then every file no row names.

    With ``retention`` and ``now``, a record whose retention period ended at ``now`` or before is
    quarantined (``retention-ended``) rather than archived, and a row naming a class the policy
    does not have is a bad row: see :func:`_retention_problem`. Not so for a record whose
    encounter id is in ``catalogued`` (the catalog's): it was archived while its period ran, and
    the run finds it already archived by comparing its data; a rerun after the period ended must
    not report an archived record as quarantined."""
    if not scan_dir.is_dir():
        raise SourceError(f"scan directory {scan_dir} does not exist or is not a directory")
    data = _read_manifest_file(manifest, limits)
    present, ambiguous = _files(scan_dir)
    named: set[str] = set()
    for item in read_manifest(data, tz=tz):
        named.update(item.files)
        if isinstance(item, RowProblem):
            yield _entry(
                manifest.name,
                item.line,
                QuarantineReason.INVALID_MANIFEST_ROW,
                item.detail,
                item.raw,
            )
            continue
        if ambiguous.intersection(item.files):
            yield _entry(
                manifest.name,
                item.line,
                QuarantineReason.UNREADABLE_SCAN,
                "two files in the scan directory carry this name, in different Unicode forms",
                b"",
                encounter_id=item.encounter_id,
            )
            continue
        found = _bundle_or_entry(item, present, manifest_name=manifest.name, ocr=ocr, limits=limits)
        if (
            isinstance(found, EncounterBundle)
            and retention is not None
            and now is not None
            and found.encounter_id not in catalogued
        ):
            problem = _retention_problem(found, retention, now)
            if problem is not None:
                found = _entry(manifest.name, item.line, *problem, encounter_id=item.encounter_id)
        yield found
    for name, path in present.items():
        if name not in named and path.suffix.lower() in SCAN_SUFFIXES and path != manifest:
            yield _entry(
                name,
                0,
                QuarantineReason.UNLISTED_SCAN,
                "no manifest row names this file",
                _head(path),
                scope=QuarantineScope.FILE,
            )


def _files(scan_dir: Path) -> tuple[dict[str, Path], set[str]]:
    """The directory's files by NFC name (the manifest's values are NFC; a Mac or a USB stick
    may have written the names NFD), and the names two files share once normalised."""
    present: dict[str, Path] = {}
    ambiguous: set[str] = set()
    for path in sorted(scan_dir.iterdir()):
        if path.is_file():
            name = unicodedata.normalize("NFC", path.name)
            if name in present:
                ambiguous.add(name)
            present[name] = path
    return present, ambiguous


def _retention_problem(
    bundle: EncounterBundle, retention: Retention, now: datetime
) -> tuple[QuarantineReason, str, bytes] | None:
    """A class the policy does not know, or a period already over.

    Digitising a paper record past its period is not forbidden, but archiving it would lock a
    copy of sensitive data the law no longer asks anyone to keep, and S3 Object Lock refuses a
    retain-until in the past anyway. Whether it is destroyed or kept is the facility's decision
    through its disposition procedure (Archive Law 33/2024 art. 16, Decree 113/2025 art. 20): the
    entry says so; keeping it means stating a longer class in the manifest."""
    try:
        class_id, until = retention(bundle)
    except (ArchiveError, ValueError):
        if bundle.declared_retention_class is None:
            return None  # an unclassifiable record fails in the worker, with its reason
        try:  # was it the class the manifest names? Then the row is wrong, now and every rerun.
            retention(dataclasses.replace(bundle, declared_retention_class=None))
        except (ArchiveError, ValueError):
            return None
        detail = "retention_class: not a class of the retention policy"
        return QuarantineReason.INVALID_MANIFEST_ROW, detail, bundle.canonical
    if until > now:
        return None
    detail = (
        f"the retention period of class {class_id} ended before intake: put the paper record "
        "in the disposition procedure, or state a longer retention_class in the manifest if "
        "the facility decided to keep it"
    )
    return QuarantineReason.RETENTION_ENDED, detail, bundle.canonical


def _read_manifest_file(manifest: Path, limits: IntakeSettings) -> bytes:
    try:
        with manifest.open("rb") as f:  # never more than the limit in memory
            data = f.read(limits.max_manifest_bytes + 1)
    except OSError as e:
        raise SourceError(f"the manifest {manifest.name} cannot be read") from e
    if len(data) > limits.max_manifest_bytes:
        raise SourceError(
            f"the manifest is larger than {limits.max_manifest_mib} MiB (max_manifest_mib); "
            "split it into batches"
        )
    return data


def _bundle_or_entry(
    row: ScanRow,
    present: dict[str, Path],
    *,
    manifest_name: str,
    ocr: bool,
    limits: IntakeSettings,
) -> CollectedItem:
    raw = json.dumps(row.as_json(), ensure_ascii=False, sort_keys=True).encode()
    files: list[dict[str, object]] = []
    for name in row.files:
        path = present.get(name)
        if path is None:
            return _entry(
                manifest_name,
                row.line,
                QuarantineReason.MISSING_SCAN,
                f"file {len(files) + 1} of the row is not in the scan directory",
                raw,
                encounter_id=row.encounter_id,
            )
        if path.is_symlink():  # it may point anywhere, past the source roots the run admitted
            return _entry(
                name,
                row.line,
                QuarantineReason.UNREADABLE_SCAN,
                "a symbolic link, not a scan: copy the file itself into the scan directory",
                b"",
                encounter_id=row.encounter_id,
            )
        pages = inspect_scan(path, limits)
        if isinstance(pages, ScanProblem):
            return _entry(
                name,
                row.line,
                pages.reason,
                pages.detail,
                _head(path),
                encounter_id=row.encounter_id,
            )
        files.append({"name": name, "sha256": _sha256(path), "pages": pages})
    kinds = {Path(str(f["name"])).suffix.lower() == ".pdf" for f in files}
    if True in kinds and len(files) > 1:
        return _entry(
            manifest_name,
            row.line,
            QuarantineReason.INVALID_MANIFEST_ROW,
            "file: a PDF scan must be the row's only file (list images for several files)",
            raw,
            encounter_id=row.encounter_id,
        )
    return EncounterBundle(
        encounter_id=row.encounter_id,
        patient_id=row.patient_id,
        facility_code=row.facility,
        admitted_at=row.admitted_at,
        discharged_at=row.discharged_at,
        encounter_class=row.encounter_class,
        department_code=None,
        discharge_disposition=None,
        accident_code=row.accident_code,
        treatment_result=row.treatment_result,
        icd10_codes=row.icd10_codes,
        procedure_codes=row.procedure_codes,
        patient_deceased=row.deceased,
        record_number=row.record_number,
        episode_key=None,
        bundle={"paths": [str(present[n]) for n in row.files], "ocr": ocr},
        canonical=canonical_manifest(row, files),
        source_kind=SCANNED,
        declared_retention_class=row.retention_class,
    )


def canonical_manifest(row: ScanRow, files: list[dict[str, object]]) -> bytes:
    """The bytes the PDF embeds: the row, the scan files' digests, the record kind. Sorted keys,
    NFC text, no time of conversion, so a rerun over the same paper finds the same record."""
    document = {
        RECORD_KIND: SCANNED,
        "format": MANIFEST_FORMAT,
        "row": row.as_json(),
        "files": files,
    }
    return json.dumps(document, ensure_ascii=False, sort_keys=True, indent=1).encode()


def _entry(
    source_file: str,
    line: int,
    reason: QuarantineReason,
    detail: str,
    raw: bytes,
    *,
    scope: QuarantineScope = QuarantineScope.ENCOUNTER,
    encounter_id: str | None = None,
) -> QuarantineEntry:
    return QuarantineEntry(
        reason=reason,
        scope=scope,
        source_file=source_file,
        line_number=line,
        resource_type=_ROW_TYPE,
        resource_id=None,
        encounter_id=encounter_id,
        detail=detail,
        raw_line=raw,
    )


def _head(path: Path) -> bytes:
    """The file's first bytes for its quarantine entry; nothing through a symbolic link."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return b""
    with os.fdopen(fd, "rb") as f:
        try:
            return f.read(_HEAD_BYTES)
        except OSError:
            return b""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

"""A dossier export: the archived documents exactly as signed, their data, a verification report
per document made at export time, and a manifest, as a zipped BagIt bag (RFC 8493).

Layout of the bag (``bagit`` writes ``bagit.txt``, ``bag-info.txt`` and the sha256/sha512
manifests; every payload file is covered by both)::

    data/dossier.json                          what was exported, for whom, when; sha256 per file
    data/<encounter_id>/discharge-summary.pdf  the decrypted PDF/A-3b, byte-identical to the signed
    data/<encounter_id>/fhir-bundle.json       the FHIR Bundle embedded in (and signed with) the PDF
    (a QĐ 130 record: qd130-hoso.xml; a paper record: paper-record.pdf, scan-manifest.json)
    data/<encounter_id>/verification.json      every check of the verification flow, run now

A record's folder is its encounter id, so an id that is not one plain path segment (".", "..",
anything with a separator: ids the collector now quarantines, but a catalog may hold from before)
refuses the whole export up front, naming the record, rather than write beside the bag.

A document whose unsealed bytes do not hash to the catalog's ``pdf_sha256`` is never exported:
the export fails with a :class:`DossierError` naming the record, for a records officer to look at
with ``emr-archive verify``. A document that opens but fails a check (say its lock was found
changed) is exported with its failing report, because the inspector must see it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bagit  # type: ignore[import-untyped]

from archive.catalog import CatalogRow
from archive.core.errors import ArchiveError
from archive.render import extract_embedded_data
from archive.seal import ObjectIdentity, unseal
from archive.sources import id_problem
from retrieval.errors import DossierError
from retrieval.file_names import document_names
from verification.checks import FULL
from verification.evidence import Environment
from verification.results import RecordResult
from verification.verifier import Verifier

REPORT_NAME = "verification.json"
DOSSIER_NAME = "dossier.json"
_CHECKSUMS = ["sha256", "sha512"]


@dataclass(frozen=True, slots=True)
class ExportedDocument:
    encounter_id: str
    pdf_sha256: str
    status: str  # bottom line of the verification at export time
    reason_code: str


@dataclass(frozen=True, slots=True)
class ExportResult:
    path: Path  # the zip
    sha256: str  # of the zip
    documents: tuple[ExportedDocument, ...]
    seconds: float


def export_dossier(
    rows: Sequence[CatalogRow],
    *,
    env: Environment,
    out_dir: Path,
    label: str,
    now: datetime,
    context: Mapping[str, str],
) -> ExportResult:
    """Export the newest version of each encounter in ``rows`` as ``<out_dir>/<label>.zip``.

    ``context`` (who asked, role, grant, case) goes into ``bag-info.txt`` and ``dossier.json``;
    it must not contain PHI."""
    if not rows:
        raise DossierError("nothing to export: no catalogued record matched")
    for row in rows:
        _require_folder_name(row)
    begin = datetime.now(UTC)
    verifier = Verifier.create(checks=FULL, env=env)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{label}.zip"
    if target.exists():
        raise DossierError(f"{target} exists: move it away or choose another --out")
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".dossier-") as tmp:
        bag_dir = Path(tmp) / label
        bag_dir.mkdir()
        files: dict[str, str] = {}
        documents = [_write_document(r, verifier, env, bag_dir, now, files) for r in rows]
        _write_json(bag_dir / DOSSIER_NAME, _dossier(rows, documents, files, now, context))
        _make_bag(bag_dir, context, now)
        _zip(bag_dir, target)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    seconds = (datetime.now(UTC) - begin).total_seconds()
    return ExportResult(target, digest, tuple(documents), seconds)


def newest_per_encounter(rows: Sequence[CatalogRow]) -> list[CatalogRow]:
    """A renewed record has several catalogued versions; the newest signed one is the dossier's."""
    newest: dict[str, CatalogRow] = {}
    for row in rows:
        seen = newest.get(row.encounter_id)
        if seen is None or row.signed_at >= seen.signed_at:
            newest[row.encounter_id] = row
    return sorted(newest.values(), key=lambda r: (r.discharged_at, r.encounter_id))


def _require_folder_name(row: CatalogRow) -> None:
    problem = id_problem(row.encounter_id)
    if problem is not None:
        # The id may be anything here, so the message names the record by its object key.
        raise DossierError(
            f"the encounter id of {row.object_key} cannot name a folder in the bag ({problem}); "
            "nothing was exported - report it to the records office"
        )


def _write_document(
    row: CatalogRow,
    verifier: Verifier,
    env: Environment,
    bag_dir: Path,
    now: datetime,
    files: dict[str, str],
) -> ExportedDocument:
    result = verifier.verify(row, now=now)
    pdf = _unsealed(row, env)
    data = extract_embedded_data(pdf)
    folder = bag_dir / row.encounter_id
    folder.mkdir()
    report = _report(row, result, now)
    names = document_names(row.source_kind)
    for name, blob in ((names.pdf, pdf), (names.data, data), (REPORT_NAME, report)):
        (folder / name).write_bytes(blob)
        files[f"{row.encounter_id}/{name}"] = hashlib.sha256(blob).hexdigest()
    return ExportedDocument(
        row.encounter_id, row.pdf_sha256, result.status.value, result.reason.reason_code
    )


def _unsealed(row: CatalogRow, env: Environment) -> bytes:
    identity = ObjectIdentity(row.bucket, row.object_key, row.encounter_id)
    try:
        sealed = env.store.get(row.object_key, version_id=row.version_id)
        pdf = unseal(sealed, identity=identity, keys=env.keys, settings=env.seal)
    except ArchiveError as e:
        raise DossierError(
            f"encounter {row.encounter_id}: the archived object could not be read or opened "
            f"({type(e).__name__}); run `emr-archive verify` and report it to the records office"
        ) from e
    if hashlib.sha256(pdf).hexdigest() != row.pdf_sha256:
        raise DossierError(
            f"encounter {row.encounter_id}: the unsealed PDF differs from the catalog's sha256; "
            "nothing was exported - report it to the records office"
        )
    return pdf


def _report(row: CatalogRow, result: RecordResult, now: datetime) -> bytes:
    return _json_bytes(
        {
            "encounter_id": row.encounter_id,
            "object_key": row.object_key,
            "version_id": row.version_id,
            "pdf_sha256": row.pdf_sha256,
            "verified_at": now.astimezone(UTC).isoformat(),
            "status": result.status.value,
            "reason_code": result.reason.reason_code,
            "checks": [
                {
                    "check": c.check,
                    "status": c.status.value,
                    "reason_code": c.reason_code,
                    "message": c.message,
                }
                for c in result.checks
            ],
            "renewal": None if result.renewal is None else result.renewal.reason_code,
        }
    )


def _dossier(
    rows: Sequence[CatalogRow],
    documents: Sequence[ExportedDocument],
    files: Mapping[str, str],
    now: datetime,
    context: Mapping[str, str],
) -> dict[str, Any]:
    return {
        "format": "emr-archive-dossier-1",
        "exported_at": now.astimezone(UTC).isoformat(),
        **dict(context),
        "records": [
            {
                "encounter_id": r.encounter_id,
                "facility": r.facility,
                "admitted_at": r.admitted_at.isoformat(),
                "discharged_at": r.discharged_at.isoformat(),
                "retention_class": r.retention_class,
                "retain_until": r.retain_until.isoformat(),
                "object_key": r.object_key,
                "version_id": r.version_id,
                "pdf_sha256": r.pdf_sha256,
                "data_sha256": r.data_sha256,
                "signer_cert_sha256": r.signer_cert_sha256,
                "signed_at": r.signed_at.isoformat(),
                "verification": d.status,
            }
            for r, d in zip(rows, documents, strict=True)
        ],
        "files_sha256": dict(sorted(files.items())),
    }


def _make_bag(bag_dir: Path, context: Mapping[str, str], now: datetime) -> None:
    info = {
        "Source-Organization": context.get("organization", "emr-archive"),
        "Bagging-Date": f"{now:%Y-%m-%d}",
        "External-Description": "Archived discharge summaries (PDF/A-3b, PAdES B-LTA) with "
        "their embedded FHIR data and verification reports",
        "External-Identifier": bag_dir.name,
        "Bag-Software-Agent": "emr-archive retrieval",
    }
    logging.getLogger("bagit").setLevel(logging.WARNING)
    try:
        bag = bagit.make_bag(str(bag_dir), bag_info=info, checksums=_CHECKSUMS, processes=1)
        bag.validate(completeness_only=False)
    except (bagit.BagError, OSError) as e:
        raise DossierError(f"the BagIt bag could not be built or did not validate: {e}") from e


def _zip(bag_dir: Path, target: Path) -> None:
    """The bag's directory at the zip's top level, files in sorted order; written beside the
    target and renamed, so a reader never sees half a zip."""
    partial = target.with_name(f".{target.name}.partial")
    partial.touch(mode=0o600)  # the dossier is PHI: readable by its owner only
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for path in sorted(p for p in bag_dir.rglob("*") if p.is_file()):
            z.write(path, f"{bag_dir.name}/{path.relative_to(bag_dir).as_posix()}")
    shutil.move(partial, target)


def validate_zip(path: Path) -> bagit.Bag:
    """Unzip into a temporary directory and validate the bag fully (what an inspector does)."""
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(path) as z:
        z.extractall(tmp)
        (top,) = {Path(n).parts[0] for n in z.namelist()}
        bag = bagit.Bag(str(Path(tmp) / top))
        bag.validate()
        return bag


def _json_bytes(value: object) -> bytes:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True).encode() + b"\n"


def _write_json(path: Path, value: object) -> None:
    path.write_bytes(_json_bytes(value))

"""A dossier export: the archived documents exactly as signed, their data, their evidence records,
a verification report per document made at export time, and a manifest, as a zipped BagIt bag
(RFC 8493).

Layout of the bag (``bagit`` writes ``bagit.txt``, ``bag-info.txt`` and the sha256/sha512
manifests; every payload file is covered by both)::

    data/README.txt                            how an inspector checks all of it independently
    data/dossier.json                          what was exported, for whom, when; sha256 per file;
                                               per record its evidence record and any renewal
    data/<encounter_id>/discharge-summary.pdf  the decrypted PDF/A-3b, byte-identical to the signed
    data/<encounter_id>/evidence-record.ers    its RFC 4998 evidence record (retrieval.evidence)
    data/<encounter_id>/fhir-bundle.json       the FHIR Bundle embedded in (and signed with) the PDF
    (a QĐ 130 record: qd130-hoso.xml; a paper record: paper-record.pdf, scan-manifest.json)
    data/<encounter_id>/verification.json      every check of the verification flow, run now
    data/<encounter_id>/discharge-summary.renewed.pdf   with ``renew``: the same PDF with one more
                                               document timestamp (archive.sign.renew)

With ``renew`` both PDFs are in the bag: the evidence record proves the archived bytes (its leaf
is their SHA-256), so only the original can be checked against it and compared with the
catalog; the renewed copy is what validates alone in a PDF viewer once the TSA certificate of
the original's last timestamp has expired. The archived object is never rewritten.

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
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from archive.catalog import CatalogRow
from archive.core.errors import ArchiveError
from archive.render import extract_embedded_data
from archive.seal import ObjectIdentity, unseal
from archive.sign.renew import RenewedCopy
from archive.sources import id_problem
from retrieval.bag import README_NAME, make_bag, readme_text, zip_bag
from retrieval.bag import validate_zip as validate_zip  # where callers have always found it
from retrieval.errors import DossierError
from retrieval.evidence import EVIDENCE_NAME, exported_evidence
from retrieval.file_names import document_names, renewed_name
from verification.checks import FULL
from verification.evidence import Environment
from verification.results import RecordResult
from verification.verifier import Verifier

REPORT_NAME = "verification.json"
DOSSIER_NAME = "dossier.json"
Renewer = Callable[[bytes], RenewedCopy]  # a signed PDF -> it with one more document timestamp


@dataclass(frozen=True, slots=True)
class ExportedDocument:
    encounter_id: str
    pdf_sha256: str
    status: str  # bottom line of the verification at export time
    reason_code: str
    evidence: str = "exported"  # "exported", "pending", "missing" or "unreadable"
    renewed: bool = False  # the bag also holds a renewed copy of the PDF
    entries: dict[str, object] = field(default_factory=dict, compare=False)  # for dossier.json


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
    renew: Renewer | None = None,
) -> ExportResult:
    """Export the newest version of each encounter in ``rows`` as ``<out_dir>/<label>.zip``.

    ``context`` (who asked, role, grant, case) goes into ``bag-info.txt`` and ``dossier.json``;
    it must not contain PHI. ``renew``: add a renewed copy of each PDF (see the module doc);
    when it fails for one document nothing is exported."""
    if not rows:
        raise DossierError("nothing to export: no catalogued record matched")
    # The folder is named by the encounter: two versions of one record (an amendment, a corrected
    # scan manifest) would collide there (FileExistsError), so the newest is taken here too.
    rows = newest_per_encounter(rows)
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
        documents = [_write_document(r, verifier, env, bag_dir, now, files, renew) for r in rows]
        _write_json(bag_dir / DOSSIER_NAME, _dossier(rows, documents, files, now, context))
        (bag_dir / README_NAME).write_text(readme_text(renewed=renew is not None))
        make_bag(bag_dir, context, now)
        zip_bag(bag_dir, target)
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
    renew: Renewer | None,
) -> ExportedDocument:
    result = verifier.verify(row, now=now)
    pdf = _unsealed(row, env)
    data = extract_embedded_data(pdf)
    folder = bag_dir / row.encounter_id
    folder.mkdir()
    names = document_names(row.source_kind)
    evidence = exported_evidence(env, row, result, pdf_file=f"{row.encounter_id}/{names.pdf}")
    blobs = [(names.pdf, pdf), (names.data, data)]
    blobs.append((REPORT_NAME, _report(row, result, now, evidence.entry)))
    if evidence.der is not None:
        blobs.append((EVIDENCE_NAME, evidence.der))
    entries: dict[str, object] = {"evidence": evidence.entry, "renewal": None}
    if renew is not None:
        copy = renew(pdf)
        blobs.append((renewed_name(names.pdf), copy.pdf))
        entries["renewal"] = _renewal(row, copy, names.pdf)
    for name, blob in blobs:
        (folder / name).write_bytes(blob)
        files[f"{row.encounter_id}/{name}"] = hashlib.sha256(blob).hexdigest()
    return ExportedDocument(
        row.encounter_id,
        row.pdf_sha256,
        result.status.value,
        result.reason.reason_code,
        evidence=str(evidence.entry["status"]),
        renewed=renew is not None,
        entries=entries,
    )


def _renewal(row: CatalogRow, copy: RenewedCopy, pdf_name: str) -> dict[str, object]:
    return {
        "file": f"{row.encounter_id}/{renewed_name(pdf_name)}",
        "sha256": hashlib.sha256(copy.pdf).hexdigest(),
        "renewed_from": f"{row.encounter_id}/{pdf_name}",
        "original_sha256": row.pdf_sha256,
        "timestamp_time": copy.timestamp_time.isoformat(),
        "tsa_url": copy.tsa_url,
        "tsa_cert_sha256": copy.tsa_cert_sha256,
        "tsa_cert_not_after": copy.tsa_cert_not_after.isoformat(),
        "timestamp_field": copy.field_name,
        "document_timestamps": copy.document_timestamps,
    }


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


def _report(
    row: CatalogRow, result: RecordResult, now: datetime, evidence: Mapping[str, object]
) -> bytes:
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
            "evidence": dict(evidence),
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
                **d.entries,
            }
            for r, d in zip(rows, documents, strict=True)
        ],
        "files_sha256": dict(sorted(files.items())),
    }


def _json_bytes(value: object) -> bytes:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True).encode() + b"\n"


def _write_json(path: Path, value: object) -> None:
    path.write_bytes(_json_bytes(value))

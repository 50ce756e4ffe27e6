"""The evidence record an export carries beside each PDF, and what ``dossier.json`` says of it.

A catalogued record's RFC 4998 evidence record is read from the bucket (sealed, locked), the
way verification reads it, and goes into the bag beside the PDF it proves. ``dossier.json``
names its file, its SHA-256 and what it proves (the first timestamp's time, how many timestamps
and chains, their hash algorithms), with the verification's verdict on it. A record whose
evidence is still pending (a TSA outage within the grace) or missing is exported all the same,
with the reason in ``dossier.json``: never silently without.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Final

from archive.catalog import CatalogRow
from archive.core.errors import EvidenceError, SealError
from archive.evidence import read_record
from archive.pipeline.evidence_current import current_evidence
from archive.store import SealedStore
from retrieval.errors import DossierError
from verification.evidence import Environment
from verification.results import RecordResult

EVIDENCE_NAME: Final = "evidence-record.ers"
_CHECK: Final = "evidence"  # verification/evidence_record.py's check


@dataclass(frozen=True, slots=True)
class EvidenceExport:
    der: bytes | None  # written beside the PDF when there is one
    entry: dict[str, Any]  # the record's "evidence" in dossier.json


def evidence_record_for(env: Environment, row: CatalogRow) -> bytes | None:
    """The record's evidence record as it stands today (the initial record with every renewal
    appended: an inspector receives the newest proof, not the first one), or None while there
    is none (pending)."""
    store = SealedStore(env.store, keys=env.keys, settings=env.seal)
    current = current_evidence(store, object_key=row.object_key, version_id=row.version_id)
    return None if current is None else current.der


def exported_evidence(
    env: Environment, row: CatalogRow, result: RecordResult, *, pdf_file: str
) -> EvidenceExport:
    """The evidence record of ``row`` for the bag (if any) and its ``dossier.json`` entry;
    ``result`` is the verification made for this export (its ``evidence`` check's verdict)."""
    checked = [c for c in result.checks if c.check == _CHECK]
    if len(checked) != 1:
        raise DossierError(
            f"encounter {row.encounter_id}: the export's verification did not check the evidence "
            "record; nothing was exported"
        )
    check = checked[0]
    verdict = {
        "verification": check.status.value,
        "reason_code": check.reason_code,
        "reason": check.message,
    }
    try:
        der = evidence_record_for(env, row)
    except SealError:
        # the stored object does not open: verification says so (evidence.malformed), and so
        # does the dossier; there are no bytes an inspector could check
        return EvidenceExport(None, {"status": "unreadable", "file": None, **verdict})
    if der is None:
        status = "pending" if check.reason_code == "evidence.pending" else "missing"
        return EvidenceExport(None, {"status": status, "file": None, **verdict})
    file = f"{row.encounter_id}/{EVIDENCE_NAME}"
    entry = {
        "status": "exported",
        "file": file,
        "sha256": hashlib.sha256(der).hexdigest(),
        "document": pdf_file,
        "document_sha256": row.pdf_sha256,
        **_proves(der, pdf_file),
        **verdict,
    }
    return EvidenceExport(der, entry)


def _proves(der: bytes, pdf_file: str) -> dict[str, Any]:
    """What the record says it proves, read (not judged: the verdict is the verification's)."""
    try:
        record = read_record(der)
    except EvidenceError:
        return {"proves": None, "readable": False}
    stamps = [s for chain in record.chains for s in chain]
    first = record.chains[0][0].gen_time
    algorithms = sorted({chain[0].algorithm for chain in record.chains})
    return {
        "proves": f"{pdf_file} existed, exactly as exported, at {first.isoformat()}",
        "readable": True,
        "first_timestamp": first.isoformat(),
        "last_timestamp": record.chains[-1][-1].gen_time.isoformat(),
        "timestamps": len(stamps),
        "chains": len(record.chains),
        "algorithms": algorithms,
    }

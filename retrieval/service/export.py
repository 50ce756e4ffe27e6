"""Exporting a dossier: one encounter or every record of one patient, as a zipped BagIt bag.

The rows come through the same checks as a search (:class:`RecordReads`); the documents are then
read from the authoritative catalog rows (the index only points at them), verified afresh and
bagged by :func:`retrieval.dossier.export_dossier`. The audit event names every encounter that
went into the zip and the zip's sha256, how many documents came without their evidence record
(pending or missing) and, with ``renew``, how many renewed copies the zip holds and from which TSA.
"""

from __future__ import annotations

import hashlib
import secrets
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any

from archive.catalog import CatalogRow
from archive.core.errors import ArchiveError
from archive.sign import SignerConfig, load_trust_roots
from archive.sign.renew import DocumentRenewer
from retrieval.access import GRANT_BOUND, Action, Principal
from retrieval.dossier import ExportResult, export_dossier, newest_per_encounter
from retrieval.service.query import Query, covered
from retrieval.service.records import RecordReads
from verification.config import HoldSet


class RecordExport(RecordReads):
    def export(
        self,
        principal: Principal,
        *,
        out_dir: Path,
        now: datetime,
        encounter_id: str | None = None,
        patient_pseudonym: str | None = None,
        renew: bool = False,
    ) -> ExportResult:
        """``renew``: the bag also holds each PDF with a fresh document timestamp from the
        configured TSA (:mod:`archive.sign.renew`); the archived objects are only read."""
        if (encounter_id is None) == (patient_pseudonym is None):
            raise ArchiveError("export one encounter or one patient")
        query = Query(encounter_id=encounter_id, patient_pseudonym=patient_pseudonym)
        with self._audited(principal, "retrieval.export", now, query.entities()) as ev:
            grants = self._authorise(principal, Action.EXPORT, now)
            rows = self._rows(query)
            if patient_pseudonym is not None and principal.role in GRANT_BOUND:
                # A patient's dossier holds what the grants cover, as the search showed it:
                # refusing because of records elsewhere would tell that they exist.
                rows = [r for r in rows if covered(principal, grants, r)]
            self._require_covered(principal, grants, rows)
            chosen = newest_per_encounter([CatalogRow.from_dict(self._full(r)) for r in rows])
            label = _label(encounter_id, patient_pseudonym, now)
            context = {
                "exported_by": principal.username,
                "role": principal.role.value,
                "grants": ",".join(g.grant_id for g in grants),
            }
            env = self._env_factory(HoldSet.of(self.register.held_encounters()))
            if renew:
                ev["renewal_tsa"] = self.settings.tsa_url  # also when the renewal fails
            with self.renewer() if renew else nullcontext() as renewer:
                result = export_dossier(
                    chosen,
                    env=env,
                    out_dir=out_dir,
                    label=label,
                    now=now,
                    context=context,
                    renew=None if renewer is None else renewer.renew,
                )
            ev.update(
                grants=context["grants"],
                documents=len(result.documents),
                zip_sha256=result.sha256,
                failed=sum(d.status != "passed" for d in result.documents),
                without_evidence=sum(d.evidence != "exported" for d in result.documents),
                renewed=sum(d.renewed for d in result.documents),
            )
            documents = [("encounter", d.encounter_id) for d in result.documents]
            ev["entities"] = [
                *query.entities(),
                *(e for e in documents if e not in query.entities()),
            ]
            return result

    def renewer(self) -> DocumentRenewer:
        """Renewals with the configured TSA, its trust roots and OCSP responder (the signer's)."""
        config = SignerConfig.from_settings(self.settings)
        roots = load_trust_roots(
            config.tsa_trust_roots, setting="EMR_ARCHIVE_SIGNER__TSA_TRUST_ROOTS"
        )
        return DocumentRenewer(
            tsa_url=config.tsa_url, tsa_roots=roots, ocsp_url_override=config.ocsp_url_override
        )

    def _full(self, indexed: dict[str, Any]) -> dict[str, Any]:
        """The authoritative catalog row behind an index hit (the index is only a pointer)."""
        table = self.catalog.find(encounter_id=indexed["encounter_id"])
        for row in table.to_pylist():
            if (row["object_key"], row["version_id"]) == (
                indexed["object_key"],
                indexed["version_id"],
            ):
                return dict(row)
        raise ArchiveError(
            f"encounter {indexed['encounter_id']} is indexed but not catalogued: "
            "delete <data_dir>/index and retry"
        )


def _label(encounter_id: str | None, pseudonym: str | None, now: datetime) -> str:
    # Not the pseudonym itself (hidden from inspectors): a short digest of it names the file.
    digest = hashlib.sha256((pseudonym or "").encode()).hexdigest()[:10]
    what = f"encounter-{encounter_id}" if encounter_id else f"patient-{digest}"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in what)
    return f"dossier-{safe}-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"

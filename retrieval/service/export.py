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
from collections.abc import Sequence
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any

from archive.catalog import Catalog, CatalogRow
from archive.catalog.lookup import EncounterLookup
from archive.core.errors import ArchiveError, CatalogError
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
            chosen = newest_per_encounter(
                [CatalogRow.from_dict(r) for r in catalogued_rows(self.catalog, rows)]
            )
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


def catalogued_rows(catalog: Catalog, indexed: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The authoritative catalog rows behind index hits (the index is only a pointer), read
    from the manifests the catalog's look-up index names for each encounter (a few pages, not a
    scan of every manifest). The look-up only says where to look: each row is the manifest's
    own, matched on encounter, key and version; when the look-up names no such row (an id
    rewritten in it, a manifest it has not taken yet) the scan of every verified manifest
    decides, as it did for every export before."""
    try:
        lookup: EncounterLookup | None = EncounterLookup.open(catalog)
    except CatalogError:  # e.g. a catalog directory this process may only read
        lookup = None
    with lookup if lookup is not None else nullcontext():
        return [_catalogued(catalog, r, lookup) for r in indexed]


def _catalogued(
    catalog: Catalog, indexed: dict[str, Any], lookup: EncounterLookup | None
) -> dict[str, Any]:
    eid = indexed["encounter_id"]
    wanted = (indexed["object_key"], indexed["version_id"])
    row = _matching(lookup.rows(eid) if lookup is not None else [], wanted)
    if row is None:
        row = _matching(catalog.find(encounter_id=eid).to_pylist(), wanted)
    if row is None:
        raise ArchiveError(
            f"encounter {eid} is indexed but not catalogued: delete <data_dir>/index and retry"
        )
    return row


def _matching(rows: list[dict[str, Any]], wanted: tuple[str, str]) -> dict[str, Any] | None:
    return next((dict(r) for r in rows if (r["object_key"], r["version_id"]) == wanted), None)


def _label(encounter_id: str | None, pseudonym: str | None, now: datetime) -> str:
    # Not the pseudonym itself (hidden from inspectors): a short digest of it names the file.
    digest = hashlib.sha256((pseudonym or "").encode()).hexdigest()[:10]
    what = f"encounter-{encounter_id}" if encounter_id else f"patient-{digest}"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in what)
    return f"dossier-{safe}-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"

"""Destruction minutes: a signed PDF/A-3b saying what was destroyed, by whose proposal and approval.

The pages list every destroyed record (encounter id, patient pseudonym, class, discharge and
retain-until dates, the sealed object's and the PDF's sha256), the proposer, who confirmed and
who approved it with the roles their accounts held, and the time; the same listing is embedded
as a FHIR R4 ``List`` (``application/fhir+json``, the attachment the archive's PDF/A checks
expect), so a machine can compare it with the register.
The PDF is signed PAdES B-LTA like every record, sealed, and stored create-once under
``retention/minutes/<proposal id>.pdf`` with a permanent-class lock (the policy's permanent
horizon): the evidence outlives everything it describes.
"""

from __future__ import annotations

import json
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from fpdf import FPDF

from archive.audit import canonical
from archive.catalog import manifest_retain_until
from archive.core.settings import Settings
from archive.seal import KeyProvider, ObjectIdentity, unseal
from archive.sign import DocumentSigner, SignedDocument, SignerConfig
from archive.store import ObjectStore, deposit, sha256_hex, storage_sites
from retention.candidates import Item
from retention.errors import RetentionError
from retention.people import Actor
from retention.policy import RetentionPolicy
from retention.proposals import Proposal
from retention.signoff import Approval

MINUTES_PREFIX = "retention/minutes/"
FHIR_MIME = "application/fhir+json"
_DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
_EXT = "urn:emr-archive:destruction"


def listing(
    proposal: Proposal,
    items: tuple[Item, ...],
    approval: Approval,
    at: datetime,
    *,
    sites: tuple[str, ...] = ("primary",),
) -> bytes:
    """The machine-readable minutes: a FHIR List of the destroyed records (canonical JSON);
    ``sites``: every storage site the records were deleted at."""

    def ext(name: str, value: str) -> dict[str, str]:
        return {"url": f"{_EXT}#{name}", "valueString": value}

    entries = [
        {
            "item": {
                "identifier": {"system": "urn:emr-archive:encounter", "value": i.encounter_id}
            },
            "extension": [
                ext("patient-pseudonym", i.patient_pseudonym),
                ext("class", i.retention_class),
                ext("discharged-at", i.discharged_at),
                ext("retain-until", i.retain_until),
                ext("sealed-sha256", i.sealed_sha256),
                ext("pdf-sha256", i.pdf_sha256),
                ext("object-key", i.object_key),
                ext("versions", ",".join(i.versions)),
            ],
        }
        for i in items
    ]
    return canonical(
        {
            "resourceType": "List",
            "status": "current",
            "mode": "snapshot",
            "title": "Biên bản hủy hồ sơ bệnh án hết thời hạn bảo quản",
            "date": at.isoformat(),
            "identifier": [
                {"system": "urn:emr-archive:disposition", "value": proposal.proposal_id}
            ],
            "extension": [
                ext("proposed-by", proposal.proposed_by),
                ext("proposed-at", proposal.proposed_at),
                ext("confirmed-by", approval.confirmed_by.name),
                ext("confirmed-role", approval.confirmed_by.role),
                ext("approved-by", approval.approved_by.name),
                ext("approved-role", approval.approved_by.role),
                ext("policy", proposal.policy_ref),
                *(ext("destroyed-at-site", site) for site in sites),
            ],
            "entry": entries,
        }
    )


def render_minutes(
    proposal: Proposal,
    items: tuple[Item, ...],
    approval: Approval,
    at: datetime,
    *,
    sites: tuple[str, ...] = ("primary",),
) -> bytes:
    """The unsigned PDF/A-3b minutes, with :func:`listing` embedded."""
    at = at.replace(microsecond=0)
    pdf = FPDF(orientation="L", unit="mm", format="A4", enforce_compliance="PDF/A-3B")
    pdf.add_font("DejaVu", "", str(_DEJAVU / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(_DEJAVU / "DejaVuSans-Bold.ttf"))
    title = f"Biên bản hủy hồ sơ — {proposal.proposal_id}"
    pdf.set_title(title)
    pdf.set_creator("emr-archive")
    pdf.set_lang("vi-VN")
    pdf.set_creation_date(at)
    pdf.set_xmp_metadata(_xmp(title, at))
    pdf.add_page()
    _header(pdf, proposal, items, approval, at, sites)
    for item in items:
        _row(pdf, item)
    data = listing(proposal, items, approval, at, sites=sites)
    pdf.embed_file(
        bytes=data,
        basename=f"{proposal.proposal_id}.fhir.json",
        mime_type=FHIR_MIME,
        associated_file_relationship="Source",
        creation_date=at,
        modification_date=at,
        compress=True,
        checksum=False,
        desc=f"FHIR R4 List of destroyed records {sha256_hex(data)}",
    )
    return bytes(pdf.output())


def _header(
    pdf: FPDF,
    p: Proposal,
    items: tuple[Item, ...],
    approval: Approval,
    at: datetime,
    sites: tuple[str, ...],
) -> None:
    pdf.set_font("DejaVu", "B", 13)
    pdf.cell(
        0, 8, "BIÊN BẢN HỦY HỒ SƠ BỆNH ÁN HẾT THỜI HẠN BẢO QUẢN", new_x="LMARGIN", new_y="NEXT"
    )
    pdf.set_font("DejaVu", "", 9)
    totals = ", ".join(f"{k}: {n}" for k, n in sorted(_totals(items).items()))
    for line in (
        f"Đề xuất (proposal) {p.proposal_id} — người đề xuất (proposed by): {p.proposed_by}, "
        f"{p.proposed_at}",
        f"Người xác nhận (confirmed by): {_who(approval.confirmed_by)} — người phê duyệt "
        f"(approved by): {_who(approval.approved_by)}",
        f"Thời điểm hủy (destroyed at): {at.isoformat()}",
        f"Chính sách (policy): {p.policy_ref} — số hồ sơ đã hủy (records destroyed): "
        f"{len(items)} ({totals or 'none'})",
        f"Đã xóa tại (deleted at): {'; '.join(sites)}",
    ):
        pdf.cell(0, 5, line, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("DejaVu", "B", 7)
    pdf.cell(
        0,
        4,
        "encounter id | class | discharged | retain until | versions",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.cell(
        0, 4, "    patient pseudonym | sealed sha256 | pdf sha256", new_x="LMARGIN", new_y="NEXT"
    )


def _row(pdf: FPDF, item: Item) -> None:
    pdf.set_font("DejaVu", "", 7)
    line = (
        f"{item.encounter_id} | {item.retention_class} | {item.discharged_at[:10]} | "
        f"{item.retain_until} | {len(item.versions)}"
    )
    pdf.cell(0, 4, line, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 5.5)
    pdf.cell(
        0,
        3.5,
        f"    {item.patient_pseudonym} | {item.sealed_sha256} | {item.pdf_sha256}",
        new_x="LMARGIN",
        new_y="NEXT",
    )


def _who(actor: Actor) -> str:
    return f"{actor.name} ({actor.role})"


def _totals(items: tuple[Item, ...]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item.retention_class] = counts.get(item.retention_class, 0) + 1
    return counts


def _xmp(title: str, at: datetime) -> str:
    stamp = at.isoformat(timespec="seconds")
    return f"""<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/">
   <pdfaid:part>3</pdfaid:part>
   <pdfaid:conformance>B</pdfaid:conformance>
   <dc:format>application/pdf</dc:format>
   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">{escape(title)}</rdf:li></rdf:Alt></dc:title>
   <xmp:CreatorTool>emr-archive</xmp:CreatorTool>
   <xmp:CreateDate>{stamp}</xmp:CreateDate>
   <xmp:ModifyDate>{stamp}</xmp:ModifyDate>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>"""


class MinutesWriter:
    """Render, sign (B-LTA), seal and lock the minutes; disposition's writer.

    :meth:`ready` opens the signer (the token session, the certificate's checks); the approval
    calls it before deleting anything, so a token that is missing or refuses its PIN, or a
    certificate refused at start, stops it with every record still in place."""

    def __init__(
        self, *, settings: Settings, store: ObjectStore, keys: KeyProvider, policy: RetentionPolicy
    ) -> None:
        self._settings, self._store, self._keys, self._policy = settings, store, keys, policy
        self._signer: DocumentSigner | None = None

    def ready(self) -> None:
        self._opened()

    def _opened(self) -> DocumentSigner:
        if self._signer is None:
            self._signer = DocumentSigner.create(SignerConfig.from_settings(self._settings))
        return self._signer

    def __call__(
        self, proposal: Proposal, items: tuple[Item, ...], approval: Approval, at: datetime
    ) -> dict[str, str]:
        sites = storage_sites(self._settings)
        pdf = render_minutes(proposal, items, approval, at, sites=sites)
        signed = _sign(self._opened(), pdf)
        key = f"{MINUTES_PREFIX}{proposal.proposal_id}.pdf"
        until = manifest_retain_until(at, years=self._policy.permanent_horizon_years)
        stored = deposit(
            signed.pdf,
            identity=ObjectIdentity(self._store.bucket, key, proposal.proposal_id),
            retain_until=until,
            store=self._store,
            keys=self._keys,
            settings=self._settings.seal,
        )
        return {"key": key, "version_id": stored.version_id, "pdf_sha256": signed.sha256}


def _sign(signer: DocumentSigner, pdf: bytes) -> SignedDocument:
    outcome = signer.sign_batch([pdf])[0]
    if not isinstance(outcome, SignedDocument):
        raise RetentionError(
            f"the destruction minutes could not be signed ({outcome.reason_code}): the records "
            "are deleted but not yet evidenced; once signing works run the same `emr-archive "
            "disposition approve` again: it resumes and writes the minutes"
        )
    return outcome


def read_minutes(
    store: ObjectStore,
    keys: KeyProvider,
    settings: Settings,
    minutes: dict[str, str],
    proposal_id: str,
) -> bytes:
    """The signed minutes PDF, unsealed (authenticated) from the bucket."""
    sealed = store.get(minutes["key"], version_id=minutes["version_id"])
    identity = ObjectIdentity(store.bucket, minutes["key"], proposal_id)
    return unseal(sealed, identity=identity, keys=keys, settings=settings.seal)


def embedded_listing(pdf: bytes) -> dict[str, Any]:
    from archive.render import extract_embedded_data

    value = json.loads(extract_embedded_data(pdf))
    assert isinstance(value, dict)
    return value

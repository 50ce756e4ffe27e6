"""Turn encounters into archived records: render, sign, seal and store, in a worker process.

One :class:`RecordWorker` lives in each worker of the run's process pool: it loads the fonts, the
signing key and its validation data, the keyring and an S3 client once, then takes batches of
encounters. Every record ends as exactly one :class:`RecordOutcome` — archived, adopted (stored by
an earlier, interrupted run and found intact) or failed with a reason code — so a bad record never
stops its batch. Outcomes carry catalog rows (pseudonyms and hashes, no PHI) and stage timings.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from archive.catalog import CatalogRow
from archive.core.errors import (
    ArchiveError,
    ObjectConflictError,
    PdfaError,
    SigningError,
    TrustServiceUnavailableError,
)
from archive.core.settings import Settings
from archive.intake import SCANNED, ScanConverter
from archive.pipeline.classifier import Classifier, RetentionDecision, decide
from archive.render import RenderedDocument, Renderer, extract_embedded_data
from archive.seal import ArchiveKeys, ObjectIdentity, open_keys
from archive.sign import (
    DocumentSigner,
    SignedDocument,
    SignerConfig,
    TrustPolicy,
    validate_pdf_signatures,
)
from archive.sources import EncounterBundle, page_model
from archive.store import (
    Deposit,
    ObjectHead,
    ObjectStore,
    adopt,
    deposit,
    open_sites,
    record_key,
)

Status = Literal["archived", "adopted", "failed"]


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    encounter_id: str
    status: Status
    row: CatalogRow | None = None
    reason_code: str | None = None  # failures only; codes and fixed phrases, never PHI
    retryable: bool = False
    pdf_bytes: int = 0
    sealed_bytes: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    ocr_timeout_pages: int = 0  # archived scans: pages without a text layer (OCR timeout)


@dataclass(frozen=True, slots=True)
class _Planned:
    bundle: EncounterBundle
    identity: ObjectIdentity
    retention: RetentionDecision


class RecordWorker:
    """Everything a worker loads once; :meth:`process` is called per batch."""

    def __init__(
        self,
        *,
        settings: Settings,
        renderer: Renderer,
        signer: DocumentSigner,
        keys: ArchiveKeys,
        store: ObjectStore,
        classifier: Classifier,
        known_signers: frozenset[str],
    ) -> None:
        self._settings = settings
        self._renderer = renderer
        self._signer = signer
        self._keys = keys
        self._store = store
        self._classifier = classifier
        # Adopted documents were signed by an earlier run, perhaps with a key rotated out since:
        # the policy verification uses (this key, the pinned ones, every catalogued signer).
        config = SignerConfig.from_settings(settings)
        self._trust = TrustPolicy.load(
            config, signer=signer.key.certificate, known_signers=known_signers
        )
        self._io = ThreadPoolExecutor(max_workers=8, thread_name_prefix="store")
        self._scans = ScanConverter(
            ocr_timeout_s=settings.intake.ocr_timeout_s,
            pages_per_group=settings.intake.pages_per_group,
        )

    @classmethod
    def create(
        cls, settings: Settings, classifier: Classifier, *, known_signers: frozenset[str]
    ) -> RecordWorker:
        """``known_signers``: the catalog's signer fingerprints (read once by the run)."""
        return cls(
            settings=settings,
            renderer=Renderer.create(),
            signer=DocumentSigner.create(SignerConfig.from_settings(settings)),
            keys=open_keys(settings),
            store=open_sites(settings),
            classifier=classifier,
            known_signers=known_signers,
        )

    def process(
        self, bundles: Sequence[EncounterBundle], *, run_id: str, created_at: datetime
    ) -> list[RecordOutcome]:
        outcomes: list[RecordOutcome] = []
        fresh: list[_Planned] = []
        for bundle in bundles:
            try:
                planned = self._plan(bundle)
            except (ArchiveError, ValueError) as e:  # a policy or naming problem of this record
                outcomes.append(
                    RecordOutcome(
                        bundle.encounter_id,
                        "failed",
                        reason_code=f"plan.error ({type(e).__name__})",
                    )
                )
                continue
            try:
                existing = self._store.latest(planned.identity.key)
            except ArchiveError as e:
                outcomes.append(_failed(planned, "store.error", type(e).__name__, retryable=True))
                continue
            if existing is None:
                fresh.append(planned)
            else:
                outcomes.append(self._adopt(planned, existing, run_id=run_id))
        outcomes.extend(self._archive(fresh, run_id=run_id, created_at=created_at))
        return outcomes

    # -- one record -----------------------------------------------------------------------------

    def _plan(self, bundle: EncounterBundle) -> _Planned:
        token = self._keys.record_token(_record_id(bundle))
        key = record_key(facility=bundle.facility_code, token=token)
        identity = ObjectIdentity(self._store.bucket, key, bundle.encounter_id)
        return _Planned(bundle, identity, decide(self._classifier, bundle))

    def _archive(
        self, batch: list[_Planned], *, run_id: str, created_at: datetime
    ) -> list[RecordOutcome]:
        rendered: list[tuple[_Planned, bytes, float]] = []
        outcomes: list[RecordOutcome] = []
        untexted: dict[str, int] = {}  # scans' pages OCR timed out on, by encounter
        for item in batch:
            start = time.perf_counter()
            try:
                doc = self._render(item.bundle, created_at)
            except ArchiveError as e:
                outcomes.append(_failed(item, "render.error", type(e).__name__))
                continue
            rendered.append((item, doc.pdf, time.perf_counter() - start))
            untexted[item.bundle.encounter_id] = doc.ocr_timeout_pages
        start = time.perf_counter()
        try:
            signed = self._signer.sign_batch([pdf for _, pdf, _ in rendered])
        except SigningError as e:
            # E.g. validation data had to be refetched and the OCSP responder is down: the
            # whole chunk waits for the next run; nothing unsigned is ever stored.
            code = (
                "sign.unavailable" if isinstance(e, TrustServiceUnavailableError) else "sign.error"
            )
            return outcomes + [
                _failed(item, code, type(e).__name__, retryable=True, pdf_bytes=len(pdf))
                for item, pdf, _ in rendered
            ]
        sign_each = (time.perf_counter() - start) / max(1, len(rendered))
        to_store: list[tuple[_Planned, SignedDocument, dict[str, float]]] = []
        for (item, pdf, render_s), result in zip(rendered, signed, strict=True):
            if isinstance(result, SignedDocument):
                to_store.append((item, result, {"render": render_s, "sign": sign_each}))
            else:
                outcomes.append(
                    _failed(
                        item, result.reason_code, "", retryable=result.retryable, pdf_bytes=len(pdf)
                    )
                )
        # PUTs wait on the network and the store: keep several in flight (boto3 clients are
        # thread-safe; sealing releases the GIL in zstd and AES).
        stored = self._io.map(
            lambda job: self._store_signed(job[0], job[1], run_id=run_id, timings=job[2]), to_store
        )
        outcomes.extend(
            dataclasses.replace(o, ocr_timeout_pages=untexted[o.encounter_id])
            if o.status != "failed" and untexted.get(o.encounter_id)
            else o
            for o in stored
        )
        return outcomes

    def _render(self, bundle: EncounterBundle, created_at: datetime) -> RenderedDocument:
        if bundle.source_kind == SCANNED:  # a paper record: OCR and the conversion mark
            return self._scans.convert(bundle, converted_at=created_at)
        return self._renderer.render(
            page_model(bundle),
            bundle.canonical,
            created_at=created_at,
            source_kind=bundle.source_kind,
            source_note=_source_note(bundle),
        )

    def _store_signed(
        self, item: _Planned, signed: SignedDocument, *, run_id: str, timings: dict[str, float]
    ) -> RecordOutcome:
        start = time.perf_counter()
        try:
            receipt = deposit(
                signed.pdf,
                identity=item.identity,
                retain_until=item.retention.retain_until,
                store=self._store,
                keys=self._keys,
                settings=self._settings.seal,
                accept_existing=self._same_encounter(item),
            )
        except ArchiveError as e:
            return _failed(item, _store_reason(e), type(e).__name__, retryable=True)
        timings = {**timings, "seal_store": time.perf_counter() - start}
        if not receipt.created:  # another run stored it meanwhile: describe what is stored
            return self._adopted_row(item, receipt, run_id=run_id, timings=timings)
        row = self._row(
            item,
            receipt,
            pdf_sha256=signed.sha256,
            signer_sha256=signed.signer_cert_sha256,
            signed_at=signed.signing_time,
            run_id=run_id,
        )
        return RecordOutcome(
            item.bundle.encounter_id,
            "archived",
            row,
            pdf_bytes=len(signed.pdf),
            sealed_bytes=receipt.sealed_size,
            timings=timings,
        )

    def _adopt(self, item: _Planned, existing: ObjectHead, *, run_id: str) -> RecordOutcome:
        """An object stored by an interrupted run: keep it if it is this encounter, intact."""
        start = time.perf_counter()
        try:
            receipt = adopt(
                existing,
                identity=item.identity,
                retain_until=item.retention.retain_until,
                store=self._store,
                keys=self._keys,
                settings=self._settings.seal,
                accept=self._same_encounter(item),
            )
            outcome = self._adopted_row(item, receipt, run_id=run_id, timings={})
        except ArchiveError as e:
            return _failed(item, _store_reason(e), type(e).__name__)
        return _with_timing(outcome, "adopt", time.perf_counter() - start)

    def _adopted_row(
        self, item: _Planned, receipt: Deposit, *, run_id: str, timings: dict[str, float]
    ) -> RecordOutcome:
        plaintext = receipt.adopted_document
        if plaintext is None:  # pragma: no cover - adopt() always returns the document
            return _failed(item, "adopt.no_document", "")
        report = validate_pdf_signatures(plaintext, trust=self._trust)
        first = report.checks[0] if report.checks else None
        if not report.passed or first is None or first.signer_cert_sha256 is None:
            return _failed(item, "adopt.signature_invalid", report.reason_code)
        if first.signing_time is None:
            return _failed(item, "adopt.no_signing_time", report.reason_code)
        row = self._row(
            item,
            receipt,
            pdf_sha256=hashlib.sha256(plaintext).hexdigest(),
            signer_sha256=first.signer_cert_sha256,
            signed_at=first.signing_time,
            run_id=run_id,
        )
        return RecordOutcome(
            item.bundle.encounter_id,
            "adopted",
            row,
            pdf_bytes=len(plaintext),
            sealed_bytes=receipt.sealed_size,
            timings=timings,
        )

    def _same_encounter(self, item: _Planned) -> _SameEncounter:
        return _SameEncounter(item.bundle.sha256)

    def _row(
        self,
        item: _Planned,
        receipt: Deposit,
        *,
        pdf_sha256: str,
        signer_sha256: str,
        signed_at: datetime,
        run_id: str,
    ) -> CatalogRow:
        b, sig = item.bundle, item.bundle.facility_signature
        return CatalogRow(
            encounter_id=b.encounter_id,
            patient_pseudonym=self._keys.pseudonym(b.patient_id),
            facility=b.facility_code,
            admitted_at=b.admitted_at,
            discharged_at=b.discharged_at,
            retention_class=item.retention.class_id,
            retain_until=receipt.retain_until,
            bucket=self._store.bucket,
            object_key=receipt.key,
            version_id=receipt.version_id,
            pdf_sha256=pdf_sha256,
            data_sha256=b.sha256,
            sealed_sha256=receipt.sealed_sha256,
            sealed_size=receipt.sealed_size,
            signer_cert_sha256=signer_sha256,
            signed_at=signed_at,
            kek_id=receipt.kek.kek_id,
            kek_version=receipt.kek.version,
            format_version=receipt.format_version,
            run_id=run_id,
            source_kind=b.source_kind,
            episode_key=b.episode_key,
            facility_signature=sig.status if sig else None,
            facility_signer_sha256=sig.signer_sha256 if sig else None,
        )


def _source_note(bundle: EncounterBundle) -> str | None:
    signature = bundle.facility_signature
    return signature.describe() if signature is not None else None


@dataclass(frozen=True, slots=True)
class _SameEncounter:
    """Accept a stored document when the FHIR data it embeds is byte-identical to ours."""

    data_sha256: str

    def __call__(self, pdf: bytes) -> bool:
        try:
            embedded = extract_embedded_data(pdf)
        except PdfaError:
            return False
        return hashlib.sha256(embedded).hexdigest() == self.data_sha256


def _failed(
    item: _Planned, code: str, detail: str, *, retryable: bool = False, pdf_bytes: int = 0
) -> RecordOutcome:
    reason = f"{code} ({detail})" if detail else code
    return RecordOutcome(
        item.bundle.encounter_id,
        "failed",
        reason_code=reason,
        retryable=retryable,
        pdf_bytes=pdf_bytes,
    )


def _store_reason(error: ArchiveError) -> str:
    return "store.conflict" if isinstance(error, ObjectConflictError) else "store.error"


def _with_timing(outcome: RecordOutcome, stage: str, seconds: float) -> RecordOutcome:
    return dataclasses.replace(outcome, timings={**outcome.timings, stage: seconds})


def _record_id(bundle: EncounterBundle) -> str:
    """What names the object: the encounter; for an amendment also its revision and data, so
    each version has a create-once key of its own and a rerun after a crash finds the same."""
    if bundle.revision == 1:
        return bundle.encounter_id
    return f"{bundle.encounter_id}\x00revision\x00{bundle.revision}\x00{bundle.sha256}"

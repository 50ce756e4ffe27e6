"""The ``evidence`` check holds the proof to the record's *effective* retain-until: a record whose
lock an upgrade lengthened past its catalog row's date needs every part of its evidence (its
renewals too) locked as long, and a renewal part locked only until the row's date is
``evidence.lock`` (the proof would be deletable years before the record)."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

from archive.catalog import CatalogRow
from archive.core.sections import EvidenceSettings
from archive.core.settings import SealSettings
from archive.pipeline.evidence_current import current_evidence
from archive.pipeline.evidence_renewal import EvidenceRenewal
from archive.pipeline.evidence_stage import EvidenceStage
from archive.pipeline.evidence_state import EvidenceState, Member
from archive.seal import LocalKeyring, ObjectIdentity, seal
from archive.sign import TrustPolicy
from archive.store import SealedStore, evidence_key
from tests.support.memstore import MemoryStore
from tests.support.renewal_world import NOW, TRUST, TSA1, TSA2, UNTIL
from verification.config import HoldSet, VerificationSettings
from verification.evidence import Environment, Evidence
from verification.evidence_record import check_evidence_record
from verification.settings import VerifySettings, weak_table

SEAL = SealSettings()
PDF = b"%PDF-1.7 a record whose retention was upgraded"
KEY = "records/v1/BV01/ab/r1" + "ab" * 19
NEW = UNTIL + timedelta(days=20 * 365)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _archived_and_renewed(tmp_path: Path) -> tuple[MemoryStore, SealedStore, CatalogRow]:
    """One sealed record, its nightly evidence (TSA1) and one timestamp renewal (TSA2), all
    locked until the catalogued UNTIL."""
    keys = LocalKeyring.create(tmp_path / "keys", kek_id="k")
    store = MemoryStore()
    sealed_pdf = seal(
        PDF, identity=ObjectIdentity(store.bucket, KEY, "enc-1"), keys=keys, settings=SEAL
    )
    version = store.put_locked(KEY, sealed_pdf, retain_until=UNTIL).version_id
    meta = SealedStore(store, keys=keys, settings=SEAL)
    stage = EvidenceStage(
        EvidenceState(tmp_path / "state", meta),
        meta,
        timestamper=lambda root: TSA1.stamp(root, "sha256", NOW),
        check=TRUST,
        cache=tmp_path / "cache",
    )
    stage.hold("run1", [Member(evidence_key(object_key=KEY, version_id=version), _sha(PDF), UNTIL)])
    assert stage.complete("run1", now=NOW, extra=lambda _r: []).written == 1
    renewal = EvidenceRenewal(
        meta,
        settings=EvidenceSettings(),
        timestamper=lambda d, a: TSA2.stamp(d, a, NOW),
        check=TRUST,
    )
    assert renewal.renew(NOW).written == 1
    row = CatalogRow(
        encounter_id="enc-1",
        patient_pseudonym=_sha(b"p"),
        facility="BV01",
        admitted_at=NOW - timedelta(days=5),
        discharged_at=NOW - timedelta(days=1),
        retention_class="ordinary",
        retain_until=UNTIL,
        bucket=store.bucket,
        object_key=KEY,
        version_id=version,
        pdf_sha256=_sha(PDF),
        data_sha256=_sha(b"data"),
        sealed_sha256=_sha(sealed_pdf),
        sealed_size=len(sealed_pdf),
        signer_cert_sha256=_sha(b"signer"),
        signed_at=NOW - timedelta(days=1),
        kek_id="k",
        kek_version=1,
        format_version=1,
        run_id="run1",
    )
    return store, meta, row


def _check(store: MemoryStore, meta: SealedStore, row: CatalogRow) -> str:
    env = Environment(
        store=store,
        keys=meta._keys,
        seal=SEAL,
        trust=TrustPolicy(
            signer_roots=(), tsa_roots=(TSA1.root, TSA2.root), hospital_signers=frozenset()
        ),
        holds=HoldSet(),
        settings=VerificationSettings(),
        weak=weak_table(VerifySettings()),
    )
    return check_evidence_record(Evidence(row, env), NOW + timedelta(days=2)).reason_code


def test_a_renewal_part_shorter_than_an_upgraded_record_is_evidence_lock(tmp_path: Path) -> None:
    store, meta, row = _archived_and_renewed(tmp_path)
    assert _check(store, meta, row) == "evidence.ok"
    current = current_evidence(meta, object_key=row.object_key, version_id=row.version_id)
    assert current is not None
    initial, renewal = current.parts
    # An upgrade (before lock floors) lengthened the record and its initial evidence record;
    # the renewal object, written later, kept the tree's catalogued date.
    store.extend_retention(KEY, version_id=row.version_id, retain_until=NEW)
    store.extend_retention(initial.key, version_id=initial.version_id, retain_until=NEW)
    assert _check(store, meta, row) == "evidence.lock"
    store.extend_retention(renewal.key, version_id=renewal.version_id, retain_until=NEW)
    assert _check(store, meta, row) == "evidence.ok"

"""What a dossier says of each record's evidence record: the record read from the locked copy and
described (first timestamp, timestamps, chains, algorithms); pending, missing or unreadable ones
named with the verification's reason, never left out silently; no evidence check, no export."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archive.catalog import CatalogRow
from archive.core.settings import SealSettings
from archive.evidence import HashTree, new_record
from archive.seal import LocalKeyring
from archive.sign import TrustPolicy
from archive.store import SealedStore, evidence_key
from retrieval import DossierError
from retrieval.bag import readme_text
from retrieval.evidence import EVIDENCE_NAME, evidence_record_for, exported_evidence
from tests.support.evidence import local_tsa
from tests.support.memstore import MemoryStore
from verification.config import HoldSet
from verification.evidence import Environment
from verification.results import CheckResult, RecordResult
from verification.settings import VerificationSettings, VerifySettings, weak_table

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
KEY = "records/v1/79001/ab/r1ab" + "0" * 36
PDF_SHA256 = hashlib.sha256(b"the signed PDF").digest()
TSA = local_tsa(datetime(2020, 1, 1, tzinfo=UTC), datetime(2040, 1, 1, tzinfo=UTC))


def _row() -> CatalogRow:
    h = "ab" * 32
    return CatalogRow(
        encounter_id="E1",
        patient_pseudonym="p1_" + h,
        facility="79001",
        admitted_at=NOW,
        discharged_at=NOW,
        retention_class="ordinary",
        retain_until=NOW + timedelta(3650),
        bucket="memory",
        object_key=KEY,
        version_id="v00000001",
        pdf_sha256=PDF_SHA256.hex(),
        data_sha256=h,
        sealed_sha256=h,
        sealed_size=1,
        signer_cert_sha256=h,
        signed_at=NOW,
        kek_id="emr-archive-kek",
        kek_version=1,
        format_version=1,
        run_id="run-1",
    )


def _env(tmp_path: Path) -> Environment:
    return Environment(
        store=MemoryStore(),
        keys=LocalKeyring.create(tmp_path / "keys", kek_id="emr-archive-kek"),
        seal=SealSettings(),
        trust=TrustPolicy(signer_roots=(), tsa_roots=(), hospital_signers=frozenset()),
        holds=HoldSet(),
        settings=VerificationSettings(),
        weak=weak_table(VerifySettings()),
    )


def _result(*checks: CheckResult) -> RecordResult:
    return RecordResult("E1", "p1", KEY, "v00000001", "2026-11-23", checks, None, 0.1)


def _store_record(env: Environment, der: bytes) -> None:
    key = evidence_key(object_key=KEY, version_id="v00000001")
    sealed = SealedStore(env.store, keys=env.keys, settings=env.seal)
    sealed.put_locked(key, der, retain_until=NOW + timedelta(3650))


def test_a_stored_record_is_exported_and_described(tmp_path: Path) -> None:
    env = _env(tmp_path)
    tree = HashTree.build("sha256", [PDF_SHA256, hashlib.sha256(b"the manifest").digest()])
    stamped = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    der = new_record("sha256", tree.reduced(PDF_SHA256), TSA.stamp(tree.root, "sha256", stamped))
    _store_record(env, der.dump())
    ok = CheckResult.passed("evidence", "evidence record proves the PDF existed at ...")
    out = exported_evidence(env, _row(), _result(ok), pdf_file="E1/discharge-summary.pdf")
    assert out.der == der.dump() == evidence_record_for(env, _row())
    entry = out.entry
    assert (entry["status"], entry["file"]) == ("exported", f"E1/{EVIDENCE_NAME}")
    assert entry["sha256"] == hashlib.sha256(der.dump()).hexdigest()
    assert entry["document_sha256"] == PDF_SHA256.hex()
    assert (entry["timestamps"], entry["chains"], entry["algorithms"]) == (1, 1, ["sha256"])
    assert entry["first_timestamp"] == stamped.isoformat()
    assert (entry["verification"], entry["reason_code"]) == ("passed", "evidence.ok")


def test_a_pending_record_is_named_with_the_reason(tmp_path: Path) -> None:
    pending = CheckResult.passed(
        "evidence", "evidence pending: ...; the next nightly run timestamps it", "evidence.pending"
    )
    missing = CheckResult.failed("evidence", "evidence.missing", "no evidence record at ...")
    env = _env(tmp_path)
    for check, status in ((pending, "pending"), (missing, "missing")):
        out = exported_evidence(env, _row(), _result(check), pdf_file="E1/discharge-summary.pdf")
        assert out.der is None
        assert (out.entry["status"], out.entry["file"]) == (status, None)
        assert (out.entry["reason_code"], out.entry["reason"]) == (check.reason_code, check.message)


def test_records_that_do_not_open_or_parse_are_reported_not_described(tmp_path: Path) -> None:
    env = _env(tmp_path)
    key = evidence_key(object_key=KEY, version_id="v00000001")
    env.store.put_locked(key, b"not sealed by us", retain_until=NOW + timedelta(1))
    bad = CheckResult.failed("evidence", "evidence.malformed", "does not open")
    out = exported_evidence(env, _row(), _result(bad), pdf_file="E1/discharge-summary.pdf")
    assert (out.der, out.entry["status"], out.entry["reason_code"]) == (
        None,
        "unreadable",
        "evidence.malformed",
    )

    other = _env(tmp_path / "other")
    _store_record(other, b"\x30\x03\x02\x01\x01")  # opens, but is no evidence record
    out = exported_evidence(other, _row(), _result(bad), pdf_file="E1/discharge-summary.pdf")
    assert out.der == b"\x30\x03\x02\x01\x01"  # the inspector sees what the archive holds
    assert (out.entry["readable"], out.entry["proves"]) == (False, None)


def test_an_export_whose_verification_skipped_the_evidence_check_is_refused(
    tmp_path: Path,
) -> None:
    lock = CheckResult.passed("lock", "COMPLIANCE until ...")
    with pytest.raises(DossierError, match="did not check the evidence record"):
        exported_evidence(_env(tmp_path), _row(), _result(lock), pdf_file="E1/x.pdf")


def test_the_readme_says_how_to_check_the_pair_and_the_renewed_copy() -> None:
    plain, renewed = readme_text(renewed=False), readme_text(renewed=True)
    for text in (plain, renewed):
        assert (
            "emr-archive verify-file discharge-summary.pdf --evidence evidence-record.ers" in text
        )
        assert "python -m bagit --validate" in text
    assert "discharge-summary.renewed.pdf" in renewed
    assert "--renew" in plain

"""After the hospital rotates its signing key, what the old key signed is still the hospital's.

The catalog records every signer's fingerprint; verification accepts those signers besides the
configured one. The archive run's own read-back (an object stored by an interrupted run and
adopted by the next) validated with the configured signer and the pinned list only: after a key
rotation, a run interrupted before the rotation could never be completed, each of its records
failing as ``adopt.signature_invalid`` run after run. A signer the catalog never recorded still
fails. Real stack: SeaweedFS, the development PKI; the "old key" is the PKI's second valid
certificate of the hospital's CA.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from asn1crypto import pem, x509

from archive.catalog import Catalog
from archive.pipeline import ArchiveRun, RunOptions, RunSummary
from infra.pki import DevPki, P12Credential
from infra.settings import AppSettings as Settings
from retention.classifier import PolicyClassifier
from tests.support.nightly import Export, make_export
from verification.config import VerificationSettings
from verification.results import Status
from verification.run import RunPlan, VerificationRun
from verification.select import Mode, Selection

pytestmark = pytest.mark.integration

BATCH = 3
LABELS = ("foreign-signer", "hospital-signer")  # the old key, the new key


@pytest.fixture(scope="module")
def pki(stack_settings: Settings) -> DevPki:
    return DevPki(pki_dir=stack_settings.pki_dir, port=stack_settings.stack.pki_port)


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    export = make_export(tmp_path_factory.mktemp("rotation-export"), encounters=40, seed=7)
    assert len(export.summary.in_window) > 2 * BATCH  # one batch per run below, and more
    return export


def _signing_with(settings: Settings, pki: DevPki, credential: P12Credential) -> Settings:
    signer = settings.signer.model_copy(
        update={
            "pkcs12_path": credential.p12,
            "pkcs12_password_file": credential.password_file,
            "tsa_url": pki.tsa_url,
            "trust_roots": (pki.trust_root,),
            "tsa_trust_roots": (pki.trust_root,),
        }
    )
    return settings.model_copy(update={"signer": signer})


def _run(settings: Settings, export: Export, *, batches: int | None, killed: bool) -> RunSummary:
    """An archive run over ``export`` (only its first ``batches`` batches if given); ``killed``:
    it dies after storing them and before its catalog step."""
    options = RunOptions.create(
        settings, window=export.window, source=export.path, now=datetime.now(UTC), batch_size=BATCH
    )
    classifier = PolicyClassifier.from_settings(settings)
    with ArchiveRun.start(settings, options, classifier=classifier) as run:
        for done, batch in enumerate(run.batches()):
            if done == batches:
                break
            run.archive_batch(batch)
        if killed:
            return run.summary
        run.store_quarantine()
        return run.finish()


def _fingerprint(path: Path) -> str:
    cert = x509.Certificate.load(pem.unarmor(path.read_bytes())[2])
    return hashlib.sha256(cert.dump()).hexdigest()


def _rotate_after_an_interrupted_run(
    settings: Settings, pki: DevPki, export: Export, *, history: bool
) -> tuple[Settings, RunSummary]:
    """The old key signs (and, with ``history``, first catalogues a batch), a run with the old
    key dies after storing a batch, the key is rotated, and the next run finishes the work."""
    old = _signing_with(settings, pki, pki.foreign_signer)
    if history:
        assert _run(old, export, batches=1, killed=False).archived == BATCH
    assert _run(old, export, batches=1, killed=True).archived == BATCH
    new = _signing_with(settings, pki, pki.signer)
    return new, _run(new, export, batches=None, killed=False)


def _failures(settings: Settings, summary: RunSummary) -> list[dict[str, object]]:
    path = settings.data_dir / "runs" / f"{summary.run_id}.failures.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line) for line in lines]


def test_after_a_key_rotation_the_run_adopts_what_the_catalogued_old_key_stored(
    settings: Settings, pki: DevPki, export: Export, tmp_path: Path
) -> None:
    new, summary = _rotate_after_an_interrupted_run(settings, pki, export, history=True)
    assert _failures(settings, summary) == []
    assert summary.failed == {}
    assert summary.adopted == BATCH
    catalog = Catalog.open(new.catalog_dir)
    old_key, new_key = (_fingerprint(pki.cert_path(label)) for label in LABELS)
    assert catalog.signer_fingerprints() == {old_key, new_key}
    # ...and verification, with the new key configured, accepts every record either key signed.
    vsettings = VerificationSettings(output_dir=tmp_path / "verification", workers=1)
    plan = RunPlan.create(
        new, vsettings, selection=Selection(mode=Mode.FULL), now=datetime.now(UTC)
    )
    with VerificationRun.start(new, vsettings, plan, keep_results=True) as run:
        for batch in run.batches():
            run.verify_batch(batch)
        verified = run.finish()
    assert verified.status is Status.PASSED, [
        (r.encounter_id, [c.reason_code for c in r.problems]) for r in verified.results
    ]
    assert len(verified.results) == len(export.summary.in_window)


def test_a_signer_the_catalog_never_recorded_is_not_adopted(
    settings: Settings, pki: DevPki, export: Export
) -> None:
    _, summary = _rotate_after_an_interrupted_run(settings, pki, export, history=False)
    assert summary.failed == {"adopt.signature_invalid": BATCH}
    failures = _failures(settings, summary)
    assert {f["reason"] for f in failures} == {"adopt.signature_invalid (sig.unknown_signer)"}

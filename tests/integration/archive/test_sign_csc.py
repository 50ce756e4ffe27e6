"""Remote signing through the CSC API: a real CSC service (certomancer-csc-dummy) on loopback.

The key stays at the service; the archive gets the credential's certificate, authorises each
batch once and has the service sign the batch's hashes. The nightly run signs through it and its
records validate at B-LTA (here and with EU DSS); the signer pinning applies to the remote
certificate; a service that is down, refuses, or signs with another key leaves every record of
the batch unsigned and retryable.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from archive import wiring
from archive.catalog import Catalog
from archive.core.errors import ConfigError, RemoteSignerUnavailableError
from archive.pipeline import ArchiveRun, RunOptions
from archive.render import Renderer
from archive.seal import LocalKeyring, ObjectIdentity, unseal
from archive.sign import (
    DocumentSigner,
    SignedDocument,
    SignerConfig,
    SignFailure,
    validate_pdf_signatures,
)
from archive.sign.certificates import cert_sha256
from archive.sign.config import load_certificates
from archive.store import S3ObjectStore
from infra.pki import DevPki
from infra.settings import AppSettings as Settings
from retention.classifier import PolicyClassifier
from tests.support.csc_service import CscServiceProcess, credential_id, csc_config
from tests.support.fhir import canonical, example_bundle
from tests.support.nightly import make_export, record_versions, run_once
from tests.support.oracles import dss
from tests.support.pki_service import free_port
from tests.support.trust import dev_trust

pytestmark = pytest.mark.integration

MULTISIGN = 10  # what the test service declares per credential


@pytest.fixture(scope="module")
def pki(stack_settings: Settings) -> DevPki:
    return DevPki(pki_dir=stack_settings.pki_dir, port=stack_settings.stack.pki_port)


@pytest.fixture(scope="module")
def csc_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("csc")


@pytest.fixture(scope="module")
def csc(pki: DevPki, csc_dir: Path) -> Iterator[CscServiceProcess]:
    signers = {"hospital-signer": "hospital-signer", "foreign-signer": "foreign-signer"}
    config = csc_config(pki, csc_dir, signers=signers)
    service = CscServiceProcess(config=config, port=free_port(), log=csc_dir / "csc.log")
    service.start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def token(csc_dir: Path) -> tuple[Path, str]:
    value = secrets.token_urlsafe(32)
    path = csc_dir / "csc.token"
    path.touch(mode=0o600)
    path.write_text(value + "\n")
    return path, value


def _remote(settings: Settings, csc: CscServiceProcess, token: Path, **signer: object) -> Settings:
    pki = settings.pki_dir
    fields: dict[str, object] = {
        "csc_service_url": csc.url,
        "csc_credential_id": credential_id("hospital-signer"),
        "csc_token_file": token,
        "tsa_url": settings.tsa_url,
        "trust_roots": (pki / "trust-root.pem",),
        "tsa_trust_roots": (pki / "trust-root.pem",),
    }
    fields.update(signer)
    return settings.model_copy(update={"signer": settings.signer.model_copy(update=fields)})


@pytest.fixture
def remote(settings: Settings, csc: CscServiceProcess, token: tuple[Path, str]) -> Settings:
    return _remote(settings, csc, token[0])


@pytest.fixture(scope="module")
def document() -> bytes:
    bundle = example_bundle()
    at = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)
    return Renderer.create().render(bundle, canonical(bundle), created_at=at).pdf


def _hospital_sha256(pki: DevPki) -> str:
    return cert_sha256(load_certificates(pki.cert_path("hospital-signer"))[0])


def test_a_batch_is_signed_with_one_authorisation_per_multisign(
    remote: Settings, csc: CscServiceProcess, pki: DevPki, document: bytes
) -> None:
    signer = DocumentSigner.create(SignerConfig.from_settings(remote))
    mark = csc.mark()
    outcomes = signer.sign_batch([document] * MULTISIGN)
    assert all(isinstance(o, SignedDocument) for o in outcomes), outcomes
    assert csc.requests_since(mark) == {
        "credentials/authorize 200": 1,
        "signatures/signHash 200": 1,
    }
    # More than one authorisation covers: the first ten reach the signer at once (one
    # authorisation); the rest arrive as earlier documents finish, so on a busy machine they can
    # come more than LINGER_S apart and split into more batches (5 seen on a loaded 2-core box).
    # The exact count per full batch is pinned above and by tests/unit/.../test_csc_batching.py.
    mark = csc.mark()
    outcomes = signer.sign_batch([document] * 25)
    assert all(isinstance(o, SignedDocument) for o in outcomes), outcomes
    requests = csc.requests_since(mark)
    assert set(requests) == {"credentials/authorize 200", "signatures/signHash 200"}
    authorised = requests["credentials/authorize 200"]
    assert authorised == requests["signatures/signHash 200"]
    assert math.ceil(25 / MULTISIGN) <= authorised <= 1 + (25 - MULTISIGN)
    trust = dev_trust(pki)
    report = validate_pdf_signatures(outcomes[-1].pdf, trust=trust)  # type: ignore[union-attr]
    assert report.passed, report.reason
    assert report.checks[0].signer_cert_sha256 == _hospital_sha256(pki)


def test_the_nightly_run_signs_through_the_service_and_validates_at_b_lta(
    remote: Settings,
    csc: CscServiceProcess,
    pki: DevPki,
    token: tuple[Path, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    export = make_export(tmp_path / "export", encounters=24, seed=5)
    mark = csc.mark()
    with caplog.at_level(logging.DEBUG):
        summary = run_once(remote, export, batch_size=20)
    assert summary.failed == {}
    assert summary.archived == len(export.summary.in_window)
    requests = csc.requests_since(mark)
    authorised = requests["credentials/authorize 200"]
    # One authorisation per signing batch (a worker's chunk), never one per record.
    assert authorised == requests["signatures/signHash 200"]
    assert 0 < authorised < summary.archived
    assert token[1] not in caplog.text
    assert token[1] not in csc.log.read_text()

    store = S3ObjectStore.from_settings(remote)
    keys = LocalKeyring.open(remote.keyring_dir)
    trust = wiring.trust_policy(remote)
    rows = Catalog.open(remote.catalog_dir).rows().to_pylist()
    files: list[Path] = []
    for row in rows:
        identity = ObjectIdentity(row["bucket"], row["object_key"], row["encounter_id"])
        pdf = unseal(
            store.get(row["object_key"], version_id=row["version_id"]),
            identity=identity,
            keys=keys,
            settings=remote.seal,
        )
        report = validate_pdf_signatures(pdf, trust=trust)
        assert report.passed, report.reason
        assert row["signer_cert_sha256"] == _hospital_sha256(pki)
        if len(files) < 3:
            files.append(tmp_path / f"record-{len(files)}.pdf")
            files[-1].write_bytes(pdf)
    for path, verdict in dss(files, trust_anchor=pki.trust_root).items():
        assert verdict.error is None, verdict.error
        [signature] = verdict.signatures
        assert (signature.indication, signature.level) == ("TOTAL_PASSED", "PAdES-BASELINE-LTA")
        assert (signature.errors, signature.warnings) == ((), ()), (path, signature)


def test_a_pinned_certificate_refuses_another_remote_credential(
    remote: Settings, pki: DevPki
) -> None:
    # The service hands out another certificate of the same CA (a mix-up, or a compromised
    # account): signing with it would make every new record fail verification.
    other = remote.model_copy(
        update={
            "signer": remote.signer.model_copy(
                update={
                    "csc_credential_id": credential_id("foreign-signer"),
                    "certificate": pki.cert_path("hospital-signer"),
                }
            )
        }
    )
    with pytest.raises(ConfigError, match="is not the one of the certificate"):
        DocumentSigner.create(SignerConfig.from_settings(other))


def test_a_record_signed_by_another_remote_credential_fails_validation(
    remote: Settings, pki: DevPki, document: bytes
) -> None:
    other = remote.model_copy(
        update={
            "signer": remote.signer.model_copy(
                update={"csc_credential_id": credential_id("foreign-signer")}
            )
        }
    )
    [outcome] = DocumentSigner.create(SignerConfig.from_settings(other)).sign_batch([document])
    assert isinstance(outcome, SignedDocument)
    report = validate_pdf_signatures(outcome.pdf, trust=dev_trust(pki))
    assert not report.passed
    assert report.checks[0].reason_code == "sig.unknown_signer"


def test_a_service_down_at_run_start_stops_the_run_before_anything_is_stored(
    settings: Settings, token: tuple[Path, str], tmp_path: Path
) -> None:
    down = CscServiceProcess(config=tmp_path / "none.yml", port=free_port(), log=tmp_path / "log")
    with pytest.raises(RemoteSignerUnavailableError, match="did not describe the credential"):
        run_once(_remote(settings, down, token[0]), make_export(tmp_path, encounters=4, seed=2))
    assert list(S3ObjectStore.from_settings(settings).list_versions("records/")) == []


@pytest.mark.parametrize(
    "signers",
    [{}, {"hospital-signer": "foreign-signer"}],
    ids=["refuses-to-authorise", "signs-with-another-key"],
)
def test_a_service_that_refuses_or_signs_with_another_key_mid_run_stores_nothing_of_it(
    remote: Settings,
    csc: CscServiceProcess,
    pki: DevPki,
    tmp_path: Path,
    signers: dict[str, str],
) -> None:
    # The first batch signs with the good service; then the service changes under the run
    # (same port, another configuration): the hospital's credential has no key any more, or
    # the service signs with another key while still handing out the hospital's certificate.
    export = make_export(tmp_path / "export", encounters=24, seed=7)  # 11 in the window
    config = csc_config(pki, tmp_path / "bad", signers=signers)
    bad = CscServiceProcess(config=config, port=csc.port, log=tmp_path / "bad.log")
    options = RunOptions.create(
        remote, window=export.window, source=export.path, now=datetime.now(UTC), batch_size=4
    )
    classifier = PolicyClassifier.from_settings(remote)
    with ArchiveRun.start(remote, options, classifier=classifier) as run:
        batches = iter(run.batches())
        run.archive_batch(next(batches))
        csc.stop()
        bad.start()
        try:
            for batch in batches:
                run.archive_batch(batch)
        finally:
            bad.stop()
            csc.start()
        run.store_quarantine()
        summary = run.finish()
    in_window = len(export.summary.in_window)
    assert 0 < summary.archived < in_window
    assert summary.failed == {"sign.remote_signer_unavailable": in_window - summary.archived}
    assert "sign.remote_signer_unavailable" in (summary.failure_message or "")
    store = S3ObjectStore.from_settings(remote)
    assert len(list(record_versions(store))) == summary.archived
    # Nothing lost: with the service back, the next run archives the rest.
    assert run_once(remote, export, batch_size=20).archived == in_window - summary.archived


def test_a_service_down_mid_batch_fails_its_documents_as_retryable(
    remote: Settings, csc: CscServiceProcess, document: bytes
) -> None:
    signer = DocumentSigner.create(SignerConfig.from_settings(remote))
    csc.stop()
    try:
        outcomes = signer.sign_batch([document] * 3)
    finally:
        csc.start()
    assert [
        (type(o), getattr(o, "reason_code", None), getattr(o, "retryable", None)) for o in outcomes
    ] == [(SignFailure, "sign.remote_signer_unavailable", True)] * 3

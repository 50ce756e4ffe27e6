"""Signing with the key on a real PKCS#11 token: SoftHSM2, the development PKI's keys imported.

The key never leaves the token; it is found by object id (its label differs from its
certificate's, as on Viettel-CA tokens); the PIN comes from a 0600 file or a variable; the
certificate on the token meets the same refusals as a PKCS#12's; a token that goes away mid-run
fails its documents as retryable and signs nothing.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12
from pkcs11 import Attribute, ObjectClass
from pkcs11 import exceptions as p11
from pyhanko.sign.pkcs11 import PKCS11Signer

from archive.core.errors import CertificateRefusedError, ConfigError, SigningError
from archive.render import Renderer
from archive.sign import (
    DocumentSigner,
    RetryPolicy,
    SignedDocument,
    SignerConfig,
    SignFailure,
    init_worker,
    sign_in_worker,
    token_key,
    validate_pdf_signatures,
)
from archive.sign.certificates import cert_sha256
from archive.sign.config import Pkcs11Config, load_certificates
from infra.pki import DevPki, P12Credential, ensure_dev_pki
from tests.support.fhir import canonical, example_bundle
from tests.support.pki_service import PkiServiceProcess, free_port
from tests.support.softhsm import SoftToken, signer_on_token, token_dir
from tests.support.trust import dev_trust

FAST_RETRY = RetryPolicy(attempts=2, first_delay_s=0.05, max_delay_s=0.1, request_timeout_s=2.0)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    pki_dir = tmp_path_factory.mktemp("token-pki") / "pki"
    return ensure_dev_pki(pki_dir, port=free_port(), now=datetime.now(UTC))


@pytest.fixture(scope="module")
def service(pki: DevPki) -> Iterator[PkiServiceProcess]:
    svc = PkiServiceProcess(pki=pki, log=pki.pki_dir.parent / "service.log")
    svc.start()
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def on_token(
    tmp_path_factory: pytest.TempPathFactory, pki: DevPki
) -> tuple[SoftToken, Pkcs11Config]:
    return signer_on_token(tmp_path_factory, pki.signer)


@pytest.fixture(scope="module")
def document() -> bytes:
    bundle = example_bundle()
    created_at = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)
    return Renderer.create().render(bundle, canonical(bundle), created_at=created_at).pdf


def _config(pki: DevPki, token: Pkcs11Config) -> SignerConfig:
    return SignerConfig(
        pkcs11=token,
        tsa_url=pki.tsa_url,
        trust_roots=(pki.trust_root,),
        tsa_trust_roots=(pki.trust_root,),
    )


def test_b_lta_with_the_key_on_the_token_validates_offline_and_the_key_stays_there(
    service: PkiServiceProcess,
    pki: DevPki,
    on_token: tuple[SoftToken, Pkcs11Config],
    document: bytes,
) -> None:
    token, config = on_token
    signer = DocumentSigner.create(_config(pki, config), retry=FAST_RETRY)
    outcomes = signer.sign_batch([document] * 3)
    assert all(isinstance(o, SignedDocument) for o in outcomes), outcomes
    with service.stopped():
        for outcome in outcomes:
            assert isinstance(outcome, SignedDocument)
            report = validate_pdf_signatures(outcome.pdf, trust=dev_trust(pki))
            assert report.passed, report.reason
    hospital = load_certificates(pki.cert_path("hospital-signer"))[0]
    assert {o.signer_cert_sha256 for o in outcomes if isinstance(o, SignedDocument)} == {
        cert_sha256(hospital)
    }
    # The private key cannot be read off the token, not even by its owner logged in. (Through
    # the signer's own session: closing a second one would log the whole process out.)
    session = signer.key.pyhanko_signer().pkcs11_session  # type: ignore[attr-defined]
    [key] = session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})
    with pytest.raises(p11.AttributeSensitive):
        key[Attribute.PRIVATE_EXPONENT]
    assert key[Attribute.LABEL] != "Viettel-CA signer"  # labels differ; ids select
    assert token.label == config.token_label


def test_worker_processes_each_sign_on_their_own_session(
    service: PkiServiceProcess,
    pki: DevPki,
    on_token: tuple[SoftToken, Pkcs11Config],
    document: bytes,
) -> None:
    context = multiprocessing.get_context("spawn")
    config = _config(pki, on_token[1])
    with ProcessPoolExecutor(
        2, context, initializer=init_worker, initargs=(config, {"retry": FAST_RETRY})
    ) as pool:
        batches = list(pool.map(sign_in_worker, [[document] * 2, [document] * 2]))
    outcomes = [o for batch in batches for o in batch]
    assert all(isinstance(o, SignedDocument) for o in outcomes), outcomes


def test_a_wrong_certificate_id_is_named_not_guessed(
    pki: DevPki, on_token: tuple[SoftToken, Pkcs11Config]
) -> None:
    wrong = dataclasses.replace(on_token[1], cert_id=bytes.fromhex("ffff"))
    with pytest.raises(ConfigError, match="certificate with id ffff"):
        DocumentSigner.create(_config(pki, wrong))


def test_the_chain_comes_from_configured_files_when_the_token_lacks_it(
    tmp_path_factory: pytest.TempPathFactory,
    service: PkiServiceProcess,
    pki: DevPki,
    document: bytes,
) -> None:
    _, bare = signer_on_token(tmp_path_factory, pki.signer, pki=pki, chain_from_files=True)
    assert bare.chain == (pki.ca_chain,)
    issuing = load_certificates(pki.cert_path("issuing-ca"))[0]
    without = token_key.TokenSigningKey(dataclasses.replace(bare, chain=()), environ={})
    assert issuing.dump() not in {c.dump() for c in without.chain}  # not on the token
    signer = DocumentSigner.create(_config(pki, bare), retry=FAST_RETRY)
    assert issuing.dump() in {c.dump() for c in signer.key.chain}
    [outcome] = signer.sign_batch([document])
    assert isinstance(outcome, SignedDocument), outcome
    with service.stopped():
        report = validate_pdf_signatures(outcome.pdf, trust=dev_trust(pki))
    assert report.passed, report.reason


def _tsa_credential(pki: DevPki, tmp_path: Path) -> P12Credential:
    # The TSA's certificate: digital signature and time stamping, no non-repudiation.
    key = serialization.load_pem_private_key(
        (pki.pki_dir / "keys" / "tsa.key.pem").read_bytes(), None
    )
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(pki.cert_path("tsa").read_bytes())
    password = b"tsa-on-token"
    p12 = pkcs12.serialize_key_and_certificates(
        b"tsa",
        key,  # type: ignore[arg-type]
        cert,
        None,
        BestAvailableEncryption(password),
    )
    (tmp_path / "tsa.p12").write_bytes(p12)
    (tmp_path / "tsa.pass").write_bytes(password)
    return P12Credential(p12=tmp_path / "tsa.p12", password_file=tmp_path / "tsa.pass")


@pytest.mark.parametrize(
    ("label", "reason"),
    [("expired-signer", "expired"), ("revoked-signer", "revoked"), ("tsa", "invalid")],
)
def test_a_certificate_on_the_token_it_must_not_sign_with_is_refused_at_start(
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
    service: PkiServiceProcess,
    pki: DevPki,
    label: str,
    reason: str,
) -> None:
    credential = _tsa_credential(pki, tmp_path) if label == "tsa" else pki.credential(label)
    _, config = signer_on_token(tmp_path_factory, credential)
    with pytest.raises(CertificateRefusedError) as refused:
        DocumentSigner.create(_config(pki, config), retry=FAST_RETRY)
    assert refused.value.reason == reason


def test_the_pin_comes_from_a_private_file_or_a_variable_and_is_never_shown(
    tmp_path_factory: pytest.TempPathFactory, pki: DevPki, tmp_path: Path
) -> None:
    # A token of its own: login is per process and token, and this process has not logged in.
    token, config = signer_on_token(tmp_path_factory, pki.signer)
    pin = token.pin()
    shared = tmp_path / "shared.pin"
    shared.write_text(pin)
    shared.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by other users"):
        token_key.TokenSigningKey(dataclasses.replace(config, pin_file=shared), environ={})
    wrong = tmp_path / "wrong.pin"
    wrong.write_text("not-the-pin")
    wrong.chmod(0o600)
    with pytest.raises(ConfigError, match="refused the PIN") as refused:
        token_key.TokenSigningKey(dataclasses.replace(config, pin_file=wrong), environ={})
    assert "not-the-pin" not in str(refused.value)
    by_env = dataclasses.replace(config, pin_file=None, pin_env="HOSPITAL_TOKEN_PIN")
    key = token_key.TokenSigningKey(by_env, environ={"HOSPITAL_TOKEN_PIN": pin})
    assert key.identity.subject_cn
    with pytest.raises(ConfigError, match="HOSPITAL_TOKEN_PIN is not set"):
        token_key.TokenSigningKey(by_env, environ={})


def test_a_token_removed_mid_run_fails_the_documents_as_retryable_and_signs_nothing(
    tmp_path_factory: pytest.TempPathFactory,
    service: PkiServiceProcess,
    pki: DevPki,
    document: bytes,
) -> None:
    token, config = signer_on_token(tmp_path_factory, pki.signer)
    signer = DocumentSigner.create(_config(pki, config), retry=FAST_RETRY)
    assert isinstance(signer.sign_batch([document])[0], SignedDocument)
    shutil.rmtree(token_dir(token))  # what SoftHSM2 sees when a USB token is pulled out
    outcomes = signer.sign_batch([document] * 3)
    assert [type(o) for o in outcomes] == [SignFailure] * 3
    assert all(isinstance(o, SignFailure) and o.retryable for o in outcomes)
    codes = {o.reason_code for o in outcomes if isinstance(o, SignFailure)}
    assert codes == {"sign.token_unavailable"}
    # The next batch tries a new session: still no token, still nothing signed.
    again = signer.sign_batch([document])
    assert isinstance(again[0], SignFailure)
    assert again[0].retryable


def test_a_broken_session_fails_its_documents_then_a_new_session_signs(
    tmp_path_factory: pytest.TempPathFactory,
    service: PkiServiceProcess,
    pki: DevPki,
    document: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, config = signer_on_token(tmp_path_factory, pki.signer)
    signer = DocumentSigner.create(_config(pki, config), retry=FAST_RETRY)
    key = signer.key
    assert isinstance(key, token_key.TokenSigningKey)
    session = key.pyhanko_signer().pkcs11_session  # type: ignore[attr-defined]
    session.close()  # logged out and closed under the signer, on the real module
    outcomes = signer.sign_batch([document] * 2)
    assert all(isinstance(o, SignFailure) and o.retryable for o in outcomes), outcomes
    assert {o.reason_code for o in outcomes if isinstance(o, SignFailure)} == {
        "sign.token_unavailable"
    }
    monkeypatch.setattr(token_key, "REOPEN_GAP_S", 0.0)
    [outcome] = signer.sign_batch([document])
    assert isinstance(outcome, SignedDocument), outcome


def test_a_missing_token_stops_the_run_before_anything_is_signed(
    pki: DevPki, on_token: tuple[SoftToken, Pkcs11Config]
) -> None:
    absent = dataclasses.replace(on_token[1], token_label="not-plugged-in")
    with pytest.raises(SigningError, match="no such token"):
        DocumentSigner.create(_config(pki, absent))


def test_a_pin_locked_mid_run_fails_the_documents_as_retryable_and_is_not_tried_in_a_loop(
    tmp_path_factory: pytest.TempPathFactory,
    service: PkiServiceProcess,
    pki: DevPki,
    document: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # SoftHSM2 never locks a PIN (its Token::loginUser only raises CKF_USER_PIN_COUNT_LOW), so
    # the module's CKR_PIN_LOCKED is injected at the PKCS#11 boundary, for signing and for the
    # next login; the token signs for real before and after.
    monkeypatch.setattr(token_key, "REOPEN_GAP_S", 2.0)
    _, config = signer_on_token(tmp_path_factory, pki.signer)
    signer = DocumentSigner.create(_config(pki, config), retry=FAST_RETRY)
    assert isinstance(signer.sign_batch([document])[0], SignedDocument)
    logins: list[str] = []

    async def sign_locked(*args: object, **kwargs: object) -> bytes:
        raise p11.PinLocked()

    def login_locked(*args: object, **kwargs: object) -> object:
        logins.append("login")
        raise p11.PinLocked()

    with monkeypatch.context() as locked:
        locked.setattr(PKCS11Signer, "async_sign_raw", sign_locked)
        locked.setattr(token_key, "open_pkcs11_session", login_locked)
        outcomes = signer.sign_batch([document] * 2)
        for _ in range(3):  # the next batches, at once: one new login, not one per batch
            outcomes += signer.sign_batch([document])
    assert logins == ["login"]  # each login on a locked token is a wasted try: one per gap
    assert all(isinstance(o, SignFailure) and o.retryable for o in outcomes), outcomes
    failures = [o for o in outcomes if isinstance(o, SignFailure)]
    assert {o.reason_code for o in failures} == {"sign.token_unavailable"}
    assert all("PIN is locked" in o.message for o in failures), failures
    time.sleep(2.0)  # the security officer unlocks the PIN; the next session after the gap
    [outcome] = signer.sign_batch([document])
    assert isinstance(outcome, SignedDocument), outcome

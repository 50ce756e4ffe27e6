"""The signing stage against the real development PKI service on loopback, and the offline
validator against documents built to fool it.

Real keys, a real TSA/OCSP/CRL service, real pyHanko: a PAdES B-LTA signature that validates
with the service stopped, refusals of unusable certificates, TSA outages, attack files (built by
tests/support/attacks.py), a batch with request counts, and the process-pool entry points. How
fast the stage signs is measured by ``python -m bench.bench_sign``, not here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import multiprocessing
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509

from archive.core.errors import (
    CertificateRefusedError,
    RevocationUnavailableError,
    SigningError,
    TimestampUnavailableError,
)
from archive.render import Renderer, check_pdfa3b, extract_embedded_data
from archive.sign import (
    DocumentSigner,
    RetryPolicy,
    SignatureReport,
    SignedDocument,
    SignerConfig,
    SignFailure,
    TrustPolicy,
    init_worker,
    load_signer,
    load_trust_roots,
    newest_document_timestamp,
    sign_in_worker,
    validate_pdf_signatures,
)
from infra.pki import ARCH, DevPki, P12Credential, ensure_dev_pki, probe
from infra.ports import throwaway_settings as make_settings
from tests.support.attacks import (
    Attack,
    add_page_content,
    break_startxref,
    copy_foreign_timestamp,
    cut_off_document_timestamp,
    double_signer_info,
    duplicate_document_timestamp,
    edit_byte_range,
    empty_cms,
    foreign_cms,
    loop_xref,
    overlap_byte_range,
    replace_embedded_json,
    replace_page_content,
    shadow_replace_pages,
    sign_directly,
)
from tests.support.fhir import canonical, example_bundle
from tests.support.pki_service import PkiServiceProcess, free_port
from tests.support.trust import dev_trust

pytestmark = pytest.mark.integration

FAST_RETRY = RetryPolicy(attempts=3, first_delay_s=0.05, max_delay_s=0.2, request_timeout_s=2.0)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    pki_dir = tmp_path_factory.mktemp("sign-pki") / "pki"
    return ensure_dev_pki(pki_dir, port=free_port(), now=datetime.now(UTC))


@pytest.fixture(scope="module")
def service(pki: DevPki) -> Iterator[PkiServiceProcess]:
    svc = PkiServiceProcess(pki=pki, log=pki.pki_dir.parent / "service.log", access_log=True)
    svc.start()
    yield svc
    svc.stop()


def _config(pki: DevPki, credential: P12Credential | None = None, **changes: Any) -> SignerConfig:
    credential = credential or pki.signer
    config = SignerConfig(
        pkcs12_path=credential.p12,
        password_file=credential.password_file,
        tsa_url=pki.tsa_url,
        trust_roots=(pki.trust_root,),
        tsa_trust_roots=(pki.trust_root,),
    )
    return dataclasses.replace(config, **changes)


@pytest.fixture(scope="module")
def config(pki: DevPki) -> SignerConfig:
    return _config(pki)


@pytest.fixture(scope="module")
def signer(service: PkiServiceProcess, config: SignerConfig) -> DocumentSigner:
    return DocumentSigner.create(config, retry=FAST_RETRY)


@pytest.fixture(scope="module")
def trust(pki: DevPki) -> TrustPolicy:
    """The development CA for signers and TSAs; the hospital's signer and, so that their own
    verdicts are reached, the misfits the attacks below sign with (the hospital's expired key,
    its key from a CA that is not trusted)."""
    return dev_trust(pki, "expired-signer", "untrusted-signer")


@pytest.fixture(scope="module")
def document() -> bytes:
    """A real rendered PDF/A-3b discharge summary with its FHIR Bundle embedded."""
    bundle = example_bundle()
    created_at = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)
    return Renderer.create().render(bundle, canonical(bundle), created_at=created_at).pdf


@pytest.fixture(scope="module")
def signed(signer: DocumentSigner, document: bytes) -> SignedDocument:
    [outcome] = signer.sign_batch([document])
    assert isinstance(outcome, SignedDocument), outcome
    return outcome


def _asn1_cert(path: Path) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(pem.unarmor(path.read_bytes())[2])


def _fingerprint(path: Path) -> str:
    return hashlib.sha256(_asn1_cert(path).dump()).hexdigest()


def _validate(pdf: bytes, trust: TrustPolicy) -> SignatureReport:
    return validate_pdf_signatures(pdf, trust=trust)


# --- a good signature ------------------------------------------------------------------------


def test_b_lta_signature_validates_offline_and_the_document_stays_pdfa(
    service: PkiServiceProcess,
    pki: DevPki,
    document: bytes,
    signed: SignedDocument,
    trust: TrustPolicy,
) -> None:
    now = datetime.now(UTC)
    assert signed.pdf.startswith(document)  # an incremental update: the original is untouched
    assert signed.sha256 == hashlib.sha256(signed.pdf).hexdigest()
    assert signed.signer_cert_sha256 == _fingerprint(pki.cert_path("hospital-signer"))
    assert abs(signed.signing_time - now) < timedelta(minutes=1)
    assert signed.signing_time <= signed.timestamp_time
    assert signed.tsa_cert_sha256 == _fingerprint(pki.cert_path("tsa"))
    tsa_cert = _asn1_cert(pki.cert_path("tsa"))
    assert signed.tsa_cert_not_after == tsa_cert["tbs_certificate"]["validity"]["not_after"].native
    pdfa = check_pdfa3b(signed.pdf)
    assert pdfa.passed, pdfa.reason
    assert extract_embedded_data(signed.pdf) == extract_embedded_data(document)

    with service.stopped():  # offline: nothing could be fetched even if the policy allowed it
        report = _validate(signed.pdf, trust)
    assert report.passed, report.reason
    assert report.reason_code == "sig.ok"
    signature, timestamp = report.checks
    assert (signature.kind, timestamp.kind) == ("signature", "document_timestamp")
    assert signature.indication == "PASSED"
    assert signature.subindication == "OK"
    assert signature.intact
    assert signature.valid
    assert signature.has_signature_timestamp
    assert signature.signer_cert_sha256 == signed.signer_cert_sha256
    assert signature.signer_subject is not None
    assert "Ký số hồ sơ bệnh án" in signature.signer_subject
    assert signature.signing_time == signed.signing_time
    assert signature.modification_level == "LTA_UPDATES"  # only DSS + document timestamp after
    assert signature.coverage == "ENTIRE_REVISION"
    assert timestamp.coverage == "ENTIRE_FILE"  # together they cover every byte of the file
    assert timestamp.signer_cert_sha256 == signed.tsa_cert_sha256

    # Weeks later the embedded OCSP responses (10 minutes in the development PKI) have long
    # expired: judged as of its newest document timestamp the document still passes, and it
    # fails once the TSA certificate that timestamp relies on has expired (missed renewal).
    later = validate_pdf_signatures(signed.pdf, trust=trust, now=now + timedelta(days=30))
    assert later.passed, later.reason
    assert later.as_of == signed.timestamp_time
    expired = signed.tsa_cert_not_after + timedelta(days=1)
    unrenewed = validate_pdf_signatures(signed.pdf, trust=trust, now=expired)
    assert unrenewed.reason_code == "sig.timestamp_expired"
    # Judged at a fixed later time instead, the stale revocation data cannot vouch for it.
    at_later_time = validate_pdf_signatures(
        signed.pdf, trust=trust, validation_time=now + timedelta(days=30)
    )
    assert at_later_time.reason_code == "sig.ltv_incomplete"

    newest = newest_document_timestamp(signed.pdf)
    assert newest is not None
    assert newest.tsa_cert_sha256 == signed.tsa_cert_sha256
    assert newest.tsa_cert_not_after == signed.tsa_cert_not_after
    assert newest.time == signed.timestamp_time
    assert newest.hash_algorithm == "sha256"


def test_process_pool_workers_sign_with_their_own_key_load(
    service: PkiServiceProcess, config: SignerConfig, document: bytes, trust: TrustPolicy
) -> None:
    context = multiprocessing.get_context("spawn")
    options = {"retry": FAST_RETRY}
    with ProcessPoolExecutor(
        2, context, initializer=init_worker, initargs=(config, options)
    ) as pool:
        batches = list(pool.map(sign_in_worker, [[document] * 2, [document] * 2]))
    outcomes = [o for batch in batches for o in batch]
    assert all(isinstance(o, SignedDocument) for o in outcomes), outcomes
    assert isinstance(outcomes[-1], SignedDocument)
    assert _validate(outcomes[-1].pdf, trust).passed


# --- refusals and outages ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "reason", "words"),
    [
        ("expired-signer", "expired", "expired on"),
        ("not-yet-valid-signer", "not_yet_valid", "not valid before"),
        ("revoked-signer", "revoked", "revoked on"),
        ("untrusted-signer", "untrusted", "does not chain to a configured trust root"),
    ],
)
def test_refuses_a_certificate_it_must_not_sign_with(
    service: PkiServiceProcess, pki: DevPki, label: str, reason: str, words: str
) -> None:
    config = _config(pki, pki.credential(label))
    cn = _asn1_cert(pki.cert_path(label)).subject.native["common_name"]
    with pytest.raises(SigningError, match=words) as refused:
        DocumentSigner.create(config, retry=FAST_RETRY)
    assert isinstance(refused.value, CertificateRefusedError)
    assert refused.value.reason == reason
    assert refused.value.subject_cn == cn
    assert cn in str(refused.value)


def test_tsa_down_is_retried_then_reported_unavailable(pki: DevPki) -> None:
    config = _config(pki, tsa_url=f"http://127.0.0.1:{free_port()}/emr-dev/tsa/tsa")
    signer = DocumentSigner(
        key=load_signer(config),
        tsa_url=config.tsa_url,
        trust_roots=load_trust_roots(config.trust_roots),
        tsa_roots=load_trust_roots(config.tsa_trust_roots),
        retry=FAST_RETRY,
    )
    started = time.monotonic()
    with pytest.raises(TimestampUnavailableError, match="did not grant a timestamp after 3"):
        signer.prepare()  # what DocumentSigner.create does: the run never starts
    assert signer.timestamp_requests == FAST_RETRY.attempts
    assert time.monotonic() - started >= sum(FAST_RETRY.delays())


def test_tsa_outage_mid_run_returns_nothing_signed_and_recovers(
    service: PkiServiceProcess, signer: DocumentSigner, document: bytes
) -> None:
    before = signer.timestamp_requests
    with service.stopped():
        outcomes = signer.sign_batch([document] * 3)
    assert all(isinstance(o, SignFailure) for o in outcomes)
    assert {o.reason_code for o in outcomes if isinstance(o, SignFailure)} == {
        "sign.timestamp_unavailable"
    }
    assert all(o.retryable for o in outcomes if isinstance(o, SignFailure))
    # One try each, then retries by one document at a time: once those are used up, the TSA
    # counts as down and the others give up without waiting out the backoff themselves.
    assert signer.timestamp_requests - before == len(outcomes) + FAST_RETRY.attempts - 1
    [recovered] = signer.sign_batch([document])
    assert isinstance(recovered, SignedDocument)


@contextmanager
def _tsa_only(pki: DevPki) -> Iterator[str]:
    """The PKI's TSA served in-process on another port: with the service stopped, timestamps
    work but the OCSP responder and CRLs named in the certificates do not answer."""
    from werkzeug.serving import make_server

    from infra.pki_service import build_app

    server = make_server("127.0.0.1", 0, build_app(pki), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/{ARCH}/tsa/tsa"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_revocation_servers_down_is_retried_then_reported_unavailable(
    service: PkiServiceProcess, pki: DevPki
) -> None:
    with service.stopped(), _tsa_only(pki) as tsa_url:
        probe(tsa_url)
        with pytest.raises(RevocationUnavailableError, match="no OCSP response or CRL"):
            DocumentSigner.create(_config(pki, tsa_url=tsa_url), retry=FAST_RETRY)


def test_stale_validation_data_is_fetched_again(
    service: PkiServiceProcess, config: SignerConfig, document: bytes
) -> None:
    offset = timedelta(0)
    signer = DocumentSigner.create(
        config, retry=FAST_RETRY, clock=lambda: datetime.now(UTC) + offset
    )
    mark = service.mark()
    assert isinstance(signer.sign_batch([document])[0], SignedDocument)
    offset = timedelta(minutes=11)  # the development OCSP responses last 10 minutes
    assert isinstance(signer.sign_batch([document])[0], SignedDocument)
    assert service.requests_since(mark) == Counter({"tsa": 2 + 1 + 2, "ocsp": 2, "crls": 1})


def test_a_bad_document_fails_alone(signer: DocumentSigner, document: bytes) -> None:
    outcomes = signer.sign_batch([b"%PDF-1.7\nnot really", document])
    assert isinstance(outcomes[0], SignFailure)
    assert outcomes[0].reason_code == "sign.invalid_pdf"
    assert not outcomes[0].retryable
    assert isinstance(outcomes[1], SignedDocument)


# --- documents built to fool the validator ----------------------------------------------------


ATTACKS: dict[str, tuple[Callable[[Attack], bytes], set[str]]] = {
    "page content added after signing": (add_page_content, {"sig.modified_after_signing"}),
    "page content replaced after signing": (replace_page_content, {"sig.modified_after_signing"}),
    "embedded FHIR JSON replaced in a later revision": (
        replace_embedded_json,
        {"sig.modified_after_signing"},
    ),
    "byte range edited to leave bytes uncovered": (
        edit_byte_range,
        {"sig.digest_mismatch", "sig.coverage_gap"},
    ),
    "document timestamp revision cut off (B-T left)": (
        cut_off_document_timestamp,
        {"sig.ltv_incomplete"},
    ),
    "signed by the untrusted CA (B-LTA, trusting it)": (
        lambda a: sign_directly(
            a, "untrusted-signer", timestamp=True, lta_trusting=a.pki.untrusted_root
        ),
        {"sig.untrusted_chain"},
    ),
    "signer expired at signing time (B-T)": (
        lambda a: sign_directly(a, "expired-signer", timestamp=True),
        {"sig.expired_at_signing"},
    ),
    "re-signed at B-LTA by another certificate of the same CA": (
        lambda a: sign_directly(a, "foreign-signer", timestamp=True, lta_trusting=a.pki.trust_root),
        {"sig.unknown_signer"},
    ),
    "no timestamp at all (B-B)": (
        lambda a: sign_directly(a, "hospital-signer", timestamp=False),
        {"sig.no_timestamp", "sig.ltv_incomplete"},
    ),
    "bytes appended after the last revision": (
        lambda a: a.signed + b"\n% appended after the last %%EOF\n",
        {"sig.coverage_gap"},
    ),
    "not signed": (lambda a: a.document, {"sig.missing"}),
    # Hostile structure: a failure with a precise reason, never an indeterminate sig.error.
    "not a PDF": (lambda a: b"%PDF-1.7\n" + os.urandom(64), {"sig.malformed"}),
    "shadow attack: the catalog points at a page tree of its own": (
        shadow_replace_pages,
        {"sig.modified_after_signing"},
    ),
    "byte ranges overlapping": (overlap_byte_range, {"sig.byterange_overlap"}),
    "document timestamp duplicated into a second field": (
        duplicate_document_timestamp,
        {"sig.timestamp_duplicated"},
    ),
    "document timestamp copied from another document": (
        lambda a: copy_foreign_timestamp(
            a, sign_directly(a, "hospital-signer", timestamp=True, lta_trusting=a.pki.trust_root)
        ),
        {"sig.digest_mismatch"},
    ),
    "cross-reference section that names itself as predecessor": (loop_xref, {"sig.malformed"}),
    "startxref pointing off its cross-reference section": (break_startxref, {"sig.malformed"}),
    "empty CMS (zero-filled /Contents)": (empty_cms, {"sig.cms_invalid"}),
    "foreign CMS (not SignedData)": (foreign_cms, {"sig.cms_invalid"}),
    "two signer infos in one SignedData": (double_signer_info, {"sig.cms_invalid"}),
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_validator_rejects(
    name: str,
    service: PkiServiceProcess,
    pki: DevPki,
    document: bytes,
    signed: SignedDocument,
    trust: TrustPolicy,
) -> None:
    build, expected = ATTACKS[name]
    forged = build(Attack(pki=pki, document=document, signed=signed.pdf))
    report = _validate(forged, trust)
    assert not report.passed
    assert report.reason_code in expected, (report.reason_code, report.reason, report.checks)
    assert report.reason


# --- a batch, counted ---------------------------------------------------------------------------


def test_batch_of_20_fetches_validation_data_once(
    service: PkiServiceProcess, config: SignerConfig, document: bytes, trust: TrustPolicy
) -> None:
    n = 20
    mark = service.mark()
    signer = DocumentSigner.create(config, retry=FAST_RETRY)
    prepared = service.requests_since(mark)
    first = signer.sign_batch([document])  # the run's validation data serves later batches too
    mark = service.mark()
    outcomes = signer.sign_batch([document] * n)
    batch = service.requests_since(mark)
    assert isinstance(first[0], SignedDocument)
    assert all(isinstance(o, SignedDocument) for o in outcomes)
    # Run start: one OCSP for the signer, one for the TSA, the root's CRL for the issuing CA,
    # one timestamp to size placeholders and learn the TSA's certificate.
    assert prepared == Counter({"ocsp": 2, "crls": 1, "tsa": 1})
    # Per document: the signature timestamp and the document timestamp, nothing else.
    assert batch == Counter({"tsa": 2 * n})
    for outcome in outcomes[:: n // 4]:
        assert isinstance(outcome, SignedDocument)
        assert _validate(outcome.pdf, trust).passed


# --- configuration -------------------------------------------------------------------------------


def test_config_from_settings_and_password_from_environment(tmp_path: Path, pki: DevPki) -> None:
    settings = make_settings(tmp_path)
    dev = SignerConfig.from_settings(settings)
    assert dev.pkcs12_path == settings.pki_dir / "signers" / "hospital-signer.p12"
    assert dev.trust_roots == (settings.pki_dir / "trust-root.pem",)
    assert dev.tsa_url == settings.tsa_url
    config = _config(pki, password_file=None, password_env="HOSPITAL_P12_PASSWORD")
    password = pki.signer.read_password().decode()
    key = load_signer(config, environ={"HOSPITAL_P12_PASSWORD": password})
    assert key.identity.fingerprint_sha256 == _fingerprint(pki.cert_path("hospital-signer"))
    with pytest.raises(Exception, match="HOSPITAL_P12_PASSWORD is not set"):
        load_signer(config, environ={})

"""The development PKI and its service: real keys, a real TSA/OCSP/CRL service on loopback, and a
PAdES B-LTA signature that validates offline — the proof the PKI is fit for the signing stage.
How fast the service answers is measured by ``python -m bench.bench_pki``, not here."""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import io
import socket
import stat
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from asn1crypto import algos, ocsp, pem, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko.sign.ades.report import AdESPassed
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.timestamps import HTTPTimeStamper
from pyhanko.sign.validation import ades
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko.sign.validation.policy_decl import (
    CertificateFetchingRule,
    PdfSignatureValidationSpec,
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko.sign.validation.status import TimestampSignatureStatus
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator import policy_decl as certv_policy
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.errors import (
    ExpiredError,
    NotYetValidError,
    PathBuildingError,
    RevokedError,
)
from pyhanko_certvalidator.registry import SimpleTrustManager

from infra.errors import PkiError
from infra.pki import DevPki, ensure_dev_pki, probe
from tests.support.pki_service import PkiServiceProcess, free_port

pytestmark = pytest.mark.integration

T = TypeVar("T")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    pki_dir = tmp_path_factory.mktemp("pki-root") / "pki"
    return ensure_dev_pki(pki_dir, port=free_port(), now=datetime.now(UTC))


@pytest.fixture(scope="module")
def service(pki: DevPki) -> Iterator[PkiServiceProcess]:
    svc = PkiServiceProcess(pki=pki, log=pki.pki_dir.parent / "service.log")
    svc.start()
    yield svc
    # SIGTERM must end the service cleanly (in-flight requests finish, exit 0).
    assert svc.stop() == 0, f"unclean exit:\n{svc.log.read_text()}"


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _asn1_cert(path: Path) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(pem.unarmor(path.read_bytes())[2])


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- generation ---------------------------------------------------------------------------------


def test_private_files_are_private_and_second_call_changes_nothing(pki: DevPki) -> None:
    assert _mode(pki.pki_dir) == 0o700
    assert _mode(pki.pki_dir / "keys") == 0o700
    assert _mode(pki.pki_dir / "signers") == 0o700
    secrets = [*(pki.pki_dir / "keys").glob("*.key.pem"), *(pki.pki_dir / "signers").iterdir()]
    assert len(secrets) == 7 + 2 * 6  # service keys; a PKCS#12 and a password per signer
    assert all(_mode(p) == 0o600 for p in secrets)
    before = _snapshot(pki.pki_dir)
    later = datetime.now(UTC) + timedelta(days=30)
    assert ensure_dev_pki(pki.pki_dir, port=pki.port, now=later) == pki
    assert _snapshot(pki.pki_dir) == before


def _snapshot(root: Path) -> dict[Path, tuple[int, bytes]]:
    paths = [root, *root.rglob("*")]
    return {p: (p.stat().st_mtime_ns, b"" if p.is_dir() else p.read_bytes()) for p in paths}


def test_refuses_another_port_unsafe_permissions_and_leftovers(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    pki = ensure_dev_pki(tmp_path / "pki", port=20001, now=now)
    with pytest.raises(PkiError, match="generated for port 20001"):
        ensure_dev_pki(pki.pki_dir, port=20002, now=now)
    with pytest.raises(PkiError, match="expired"):
        ensure_dev_pki(pki.pki_dir, port=20001, now=now + timedelta(days=4 * 365))
    pki.signer.password_file.chmod(0o644)
    with pytest.raises(PkiError, match="chmod go-rwx"):
        ensure_dev_pki(pki.pki_dir, port=20001, now=now)
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "stray.pem").write_text("x")
    with pytest.raises(PkiError, match="delete the directory"):
        ensure_dev_pki(tmp_path / "half", port=20001, now=now)


def test_certificate_profiles(pki: DevPki) -> None:
    signer = _cert(pki.cert_path("hospital-signer"))
    usage = signer.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature
    assert usage.value.content_commitment  # nonRepudiation
    assert not usage.value.key_cert_sign
    key = signer.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    assert key.key_size == 2048
    assert "Bệnh viện Đa khoa Demo" in signer.subject.rfc4514_string()
    tsa_eku = _cert(pki.cert_path("tsa")).extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert tsa_eku.critical
    assert list(tsa_eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    aia = signer.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
    assert any(d.access_location.value == pki.ocsp_url for d in aia.value)


def _validate(pki: DevPki, label: str, *, roots: Path | None = None, online: bool = False) -> None:
    root = _asn1_cert(roots or pki.trust_root)
    interm = [_asn1_cert(pki.cert_path(c)) for c in ("issuing-ca", "untrusted-root")]
    context = ValidationContext(
        trust_roots=[root],
        other_certs=interm,
        allow_fetching=online,
        revocation_mode="hard-fail" if online else "soft-fail",
    )
    validator = CertificateValidator(_asn1_cert(pki.cert_path(label)), validation_context=context)
    if label in ("tsa", "tsa-2"):
        usage = validator.async_validate_usage(  # type: ignore[no-untyped-call]
            set(), extended_key_usage={"time_stamping"}
        )
    else:
        usage = validator.async_validate_usage(  # type: ignore[no-untyped-call]
            {"digital_signature", "non_repudiation"}
        )
    asyncio.run(_closing(context, usage))


async def _closing(context: ValidationContext, operation: Awaitable[T]) -> T:
    """Run ``operation``, then release the HTTP session ``context`` opened in this event loop."""
    try:
        return await operation
    finally:
        await context.aclose()  # type: ignore[no-untyped-call]


def test_chains_validate_to_the_root_and_misfits_fail_as_designed(pki: DevPki) -> None:
    for label in ("hospital-signer", "tsa", "tsa-2", "revoked-signer"):
        _validate(pki, label)  # offline: chain, validity and usage only
    with pytest.raises(ExpiredError):
        _validate(pki, "expired-signer")
    with pytest.raises(NotYetValidError):
        _validate(pki, "not-yet-valid-signer")
    with pytest.raises(PathBuildingError):
        _validate(pki, "untrusted-signer")
    _validate(pki, "untrusted-signer", roots=pki.untrusted_root)  # complete, merely untrusted


# --- the service --------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["tsa", "archive tsa"])
def test_timestamp_from_the_service_validates(
    service: PkiServiceProcess, pki: DevPki, which: str
) -> None:
    digest = hashlib.sha256(b"ho so benh an").digest()
    url = pki.tsa_url if which == "tsa" else pki.archive_tsa_url
    token = asyncio.run(HTTPTimeStamper(url).async_timestamp(digest, "sha256"))
    context = ValidationContext(
        trust_roots=[_asn1_cert(pki.trust_root)],
        allow_fetching=True,
        revocation_mode="hard-fail",
    )
    validation = validate_tst_signed_data(token["content"], context, lambda _: digest)
    kwargs = asyncio.run(_closing(context, validation))
    status = TimestampSignatureStatus(**kwargs)
    assert status.intact
    assert status.valid
    assert status.trusted, status.summary()
    assert abs(status.timestamp - datetime.now(UTC)) < timedelta(seconds=30)  # wall clock
    names = {c.chosen.subject.native["common_name"] for c in token["content"]["certificates"]}
    assert names == {
        "EMR Dev Issuing CA",
        "EMR Dev TSA" if which == "tsa" else "EMR Dev Archive TSA",
    }


def test_the_archive_tsa_outlives_the_first_by_decades_under_cas_that_outlive_it(
    pki: DevPki,
) -> None:
    tsa, archive_tsa = _cert(pki.cert_path("tsa")), _cert(pki.cert_path("tsa-2"))
    assert tsa.not_valid_after_utc - tsa.not_valid_before_utc < timedelta(days=11 * 365)
    lifetime = archive_tsa.not_valid_after_utc - datetime.now(UTC)
    assert lifetime > timedelta(days=40 * 365)
    for ca in ("root", "issuing-ca"):
        assert _cert(pki.cert_path(ca)).not_valid_after_utc > archive_tsa.not_valid_after_utc


def _ocsp_status(pki: DevPki, label: str) -> str:
    issuer = _asn1_cert(pki.cert_path("issuing-ca"))
    cert_id = ocsp.CertId(
        {
            "hash_algorithm": algos.DigestAlgorithm({"algorithm": "sha1"}),
            "issuer_name_hash": issuer.subject.sha1,
            "issuer_key_hash": issuer.public_key.sha1,
            "serial_number": _cert(pki.cert_path(label)).serial_number,
        }
    )
    request = ocsp.OCSPRequest({"tbs_request": {"request_list": [{"req_cert": cert_id}]}})
    body = _http(pki.ocsp_url, request.dump(), "application/ocsp-request")
    response = ocsp.OCSPResponse.load(body)
    assert response["response_status"].native == "successful"
    single = response.basic_ocsp_response["tbs_response_data"]["responses"][0]
    status: str = single["cert_status"].name
    return status


def test_ocsp_answers_good_and_revoked(service: PkiServiceProcess, pki: DevPki) -> None:
    assert _ocsp_status(pki, "hospital-signer") == "good"
    assert _ocsp_status(pki, "revoked-signer") == "revoked"
    with pytest.raises(RevokedError):
        _validate(pki, "revoked-signer", online=True)
    _validate(pki, "hospital-signer", online=True)  # CRL of the root + OCSP, fetched live


def test_crl_downloads_and_lists_the_revoked_serial(
    service: PkiServiceProcess, pki: DevPki
) -> None:
    crl = x509.load_der_x509_crl(_http(pki.crl_url(), None, None))
    issuer = _cert(pki.cert_path("issuing-ca"))
    assert crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    revoked = _cert(pki.cert_path("revoked-signer")).serial_number
    assert crl.get_revoked_certificate_by_serial_number(revoked) is not None
    good = _cert(pki.cert_path("hospital-signer")).serial_number
    assert crl.get_revoked_certificate_by_serial_number(good) is None


def test_threaded_server_serves_requests_in_parallel(
    service: PkiServiceProcess, pki: DevPki
) -> None:
    # Requests that stop halfway through their body hold the server inside their handlers until
    # the rest arrives. A server that handles one request at a time answers nothing else
    # meanwhile; a threaded one answers the others. Only the order of events is asserted, no
    # durations: the timeouts merely bound how long a failing run waits.
    nonces = range(1, 9)
    queries = {nonce: _timestamp_query(nonce) for nonce in nonces}
    stalled = {nonce: _send_half(pki, query) for nonce, query in queries.items()}
    try:
        probe(pki.tsa_url, timeout_s=10)  # answered while all eight are in flight
        # The last to arrive is answered first, while those before it are still in flight.
        for nonce in reversed(nonces):
            query = queries[nonce]
            stalled[nonce].sendall(query[len(query) // 2 :])
            assert _granted_nonce(stalled[nonce]) == nonce
    finally:
        for sock in stalled.values():
            sock.close()


def _timestamp_query(nonce: int) -> bytes:
    digest = hashlib.sha256(b"%d" % nonce).digest()
    imprint = {
        "hash_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
        "hashed_message": digest,
    }
    query = tsp.TimeStampReq({"version": "v1", "message_imprint": imprint, "nonce": nonce})
    return bytes(query.dump())


def _send_half(pki: DevPki, body: bytes) -> socket.socket:
    """A TSA request sent up to half of its body; the caller sends the rest."""
    sock = socket.create_connection(("127.0.0.1", pki.port), timeout=10)
    head = (
        f"POST {urllib.parse.urlsplit(pki.tsa_url).path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/timestamp-query\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    sock.sendall(head.encode() + body[: len(body) // 2])
    return sock


def _granted_nonce(sock: socket.socket) -> int:
    response = http.client.HTTPResponse(sock)
    response.begin()
    assert response.status == 200, response.reason
    reply = tsp.TimeStampResp.load(response.read())
    assert reply["status"]["status"].native == "granted"
    info = reply["time_stamp_token"]["content"]["encap_content_info"]["content"].parsed
    nonce: int = info["nonce"].native
    return nonce


def test_probe_fails_clearly(pki: DevPki) -> None:
    with pytest.raises(PkiError, match="does not answer"):
        probe(f"http://127.0.0.1:{free_port()}/emr-dev/tsa/tsa", timeout_s=2)
    with pytest.raises(PkiError, match="must start with http"):
        probe("file:///etc/passwd")


# --- fit for signing ----------------------------------------------------------------------------


def _tiny_pdf() -> bytes:
    """A one-page PDF, written by hand so the signature covers nothing but what it must."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
    ]
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def test_pades_b_lta_signature_validates_offline(service: PkiServiceProcess, pki: DevPki) -> None:
    root = _asn1_cert(pki.trust_root)
    signer = signers.SimpleSigner.load_pkcs12_data(
        pki.signer.p12.read_bytes(), other_certs=[], passphrase=pki.signer.read_password()
    )
    timestamper = HTTPTimeStamper(pki.tsa_url)
    context = ValidationContext(trust_roots=[root], allow_fetching=True)
    pdf = _tiny_pdf()

    async def sign() -> bytes:
        meta = signers.PdfSignatureMetadata(
            field_name="Signature1",
            subfilter=SigSeedSubFilter.PADES,
            embed_validation_info=True,
            use_pades_lta=True,
            validation_context=context,
        )
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        out = await signers.async_sign_pdf(writer, meta, signer=signer, timestamper=timestamper)
        return bytes(out.getvalue())

    signed = asyncio.run(_closing(context, sign()))

    service.stop()  # offline from here on: nothing to fetch even if the policy allowed it
    try:
        spec = PdfSignatureValidationSpec(
            SignatureValidationSpec(
                cert_validation_policy=CertValidationPolicySpec(
                    trust_manager=SimpleTrustManager.build([root]),
                    revinfo_policy=certv_policy.CertRevTrustPolicy(
                        revocation_checking_policy=certv_policy.REQUIRE_REVINFO
                    ),
                ),
                revinfo_gathering_policy=RevocationInfoGatheringSpec(
                    online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY,
                    certificate_fetching_rule=CertificateFetchingRule.NEVER_FETCH,
                ),
            )
        )
        result = _validate_lta(signed, spec)
        tampered = _validate_lta(signed.replace(b"595 842", b"595 843", 1), spec)
    finally:
        service.start()
    assert result.ades_subindic == AdESPassed.OK, result.failure_msg
    assert tampered.ades_subindic != AdESPassed.OK  # the pass above is not vacuous
    assert result.oldest_evidence_record_timestamp is not None  # the document timestamp


def _validate_lta(pdf: bytes, spec: PdfSignatureValidationSpec) -> ades.AdESLTAValidationResult:
    embedded = PdfFileReader(io.BytesIO(pdf)).embedded_signatures[0]
    return asyncio.run(ades.ades_lta_validation(embedded, spec))


def _http(url: str, body: bytes | None, content_type: str | None) -> bytes:
    headers = {"Content-Type": content_type} if content_type else {}
    request = urllib.request.Request(url, data=body, headers=headers)  # noqa: S310  (loopback)
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        data: bytes = response.read()
        return data

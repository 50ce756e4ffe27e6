"""Only the hospital's signing certificates, and only the configured TSAs, make a valid record.

The forgery these tests reproduce: take the unsigned original of an archived record, sign it at
B-LTA with another certificate the same CA issued (anyone can buy one from a national CA), and
hand the copy to an inspector. It chains to the trust roots, so it used to pass ``verify-file``.
The same for timestamps: a TSA that chains to a broad signer trust list is not the hospital's.
Real PKI service, real pyHanko, the session stack's development PKI.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from asn1crypto import pem, x509
from click.testing import CliRunner
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign.signers import PdfTimeStamper
from pyhanko.sign.timestamps import HTTPTimeStamper
from pyhanko_certvalidator import ValidationContext

from archive.catalog import Catalog
from archive.core.errors import ConfigError
from archive.core.settings import SignerSettings
from archive.render import Renderer
from archive.sign import DocumentSigner, SignedDocument, SignerConfig
from infra.cli.commands import verify_file_cmd
from infra.pki import DevPki, P12Credential
from infra.settings import AppSettings as Settings
from tests.support.catalog import RETAIN, make_row
from tests.support.fhir import canonical, example_bundle
from tests.support.memstore import MemoryStore

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pki(stack_settings: Settings) -> DevPki:
    return DevPki(pki_dir=stack_settings.pki_dir, port=stack_settings.stack.pki_port)


@pytest.fixture(scope="module")
def original() -> bytes:
    """The unsigned original of an archived record: what a forger can render again."""
    bundle = example_bundle()
    created_at = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    return Renderer.create().render(bundle, canonical(bundle), created_at=created_at).pdf


def _sign(
    pki: DevPki, pdf: bytes, credential: P12Credential, *, tsa_url: str, roots: tuple[Path, ...]
) -> bytes:
    config = SignerConfig(
        pkcs12_path=credential.p12,
        password_file=credential.password_file,
        tsa_url=tsa_url,
        trust_roots=roots,
        tsa_trust_roots=roots,
    )
    [signed] = DocumentSigner.create(config).sign_batch([pdf])
    assert isinstance(signed, SignedDocument), signed
    return signed.pdf


@pytest.fixture(scope="module")
def genuine(pki: DevPki, original: bytes) -> bytes:
    return _sign(pki, original, pki.signer, tsa_url=pki.tsa_url, roots=(pki.trust_root,))


@pytest.fixture(scope="module")
def re_signed(pki: DevPki, original: bytes) -> bytes:
    """B-LTA by the archive's own signing code, with a valid certificate of the same CA."""
    return _sign(pki, original, pki.foreign_signer, tsa_url=pki.tsa_url, roots=(pki.trust_root,))


@pytest.fixture(scope="module")
def foreign_timestamps(pki: DevPki, original: bytes) -> bytes:
    """The hospital's signature, but every timestamp from a TSA outside the TSA trust roots."""
    roots = (pki.trust_root, pki.untrusted_root)
    return _sign(pki, original, pki.signer, tsa_url=pki.foreign_tsa_url, roots=roots)


def _certificate(path: Path) -> x509.Certificate:
    return x509.Certificate.load(pem.unarmor(path.read_bytes())[2])


def _verify_file(settings: Settings, pdf: bytes, tmp_path: Path) -> tuple[int, str]:
    path = tmp_path / "copy.pdf"
    path.write_bytes(pdf)
    result = CliRunner().invoke(verify_file_cmd, [str(path)], obj=settings)
    return result.exit_code, result.output


def _with_signer(settings: Settings, **changes: object) -> Settings:
    signer = SignerSettings(**{**settings.signer.model_dump(), **changes})
    return settings.model_copy(update={"signer": signer})


def _broad_trust(settings: Settings, pki: DevPki) -> Settings:
    """A production-shaped configuration whose signer trust list holds two CAs (as a national
    root list does) while the TSA trust roots hold only the hospital's TSA provider's CA."""
    return _with_signer(
        settings,
        pkcs12_path=pki.signer.p12,
        pkcs12_password_file=pki.signer.password_file,
        tsa_url=pki.tsa_url,
        trust_roots=(pki.trust_root, pki.untrusted_root),
        tsa_trust_roots=(pki.trust_root,),
    )


def test_the_genuine_record_passes_verify_file(
    stack_settings: Settings, genuine: bytes, tmp_path: Path
) -> None:
    code, output = _verify_file(stack_settings, genuine, tmp_path)
    assert code == 0, output
    assert "copy.pdf: PASSED" in output


def test_a_record_re_signed_by_another_certificate_of_the_same_ca_fails_verify_file(
    stack_settings: Settings, pki: DevPki, re_signed: bytes, tmp_path: Path
) -> None:
    code, output = _verify_file(stack_settings, re_signed, tmp_path)
    assert code == 1, output
    assert "sig.unknown_signer" in output
    forger = _certificate(pki.cert_path("foreign-signer"))
    assert forger.subject.human_friendly in output
    assert hashlib.sha256(forger.dump()).hexdigest() in output
    assert "copy.pdf: FAILED" in output


@pytest.mark.parametrize("form", ["fingerprint", "colon-fingerprint", "certificate-file"])
def test_a_past_key_listed_in_pinned_signers_passes_verify_file(
    form: str, stack_settings: Settings, pki: DevPki, re_signed: bytes, tmp_path: Path
) -> None:
    cert_file = pki.cert_path("foreign-signer")
    digest = hashlib.sha256(_certificate(cert_file).dump()).hexdigest()
    entry = {
        "fingerprint": digest,
        "colon-fingerprint": ":".join(digest[i : i + 2] for i in range(0, 64, 2)).upper(),
        "certificate-file": str(cert_file),
    }[form]
    settings = _with_signer(stack_settings, pinned_signers=(entry,))
    code, output = _verify_file(settings, re_signed, tmp_path)
    assert code == 0, output
    assert "copy.pdf: PASSED" in output


def test_a_timestamp_from_a_foreign_tsa_fails_verify_file(
    stack_settings: Settings, pki: DevPki, foreign_timestamps: bytes, tmp_path: Path
) -> None:
    code, output = _verify_file(_broad_trust(stack_settings, pki), foreign_timestamps, tmp_path)
    assert code == 1, output
    assert "sig.untrusted_tsa" in output
    tsa = _certificate(pki.cert_path("foreign-tsa"))
    assert hashlib.sha256(tsa.dump()).hexdigest() in output


def test_the_hospital_tsa_passes_under_the_same_broad_trust_list(
    stack_settings: Settings, pki: DevPki, genuine: bytes, tmp_path: Path
) -> None:
    code, output = _verify_file(_broad_trust(stack_settings, pki), genuine, tmp_path)
    assert code == 0, output


def test_a_document_timestamp_from_a_foreign_tsa_fails_verify_file(
    stack_settings: Settings, pki: DevPki, genuine: bytes, tmp_path: Path
) -> None:
    """The hospital's signature and signature timestamp, then a document timestamp (the renewal
    that keeps a record valid for decades) added by a TSA the hospital never chose."""

    async def stamp() -> bytes:
        writer = IncrementalPdfFileWriter(io.BytesIO(genuine))
        timestamper = HTTPTimeStamper(pki.foreign_tsa_url)
        stamper = PdfTimeStamper(timestamper, field_name="DocumentTimestamp-2")
        # With its own validation data, as a renewal carries: nothing else to object to.
        roots = [_certificate(pki.trust_root), _certificate(pki.untrusted_root)]
        context = ValidationContext(trust_roots=roots, allow_fetching=True)
        try:
            out = await stamper.async_timestamp_pdf(writer, "sha256", validation_context=context)
        finally:
            await context.aclose()  # type: ignore[no-untyped-call]
        return bytes(out.getvalue())

    renewed = asyncio.run(stamp())
    code, output = _verify_file(_broad_trust(stack_settings, pki), renewed, tmp_path)
    assert code == 1, output
    assert "sig.untrusted_tsa" in output
    assert "DocumentTimestamp-2" in output


def test_a_signer_in_the_catalog_history_passes_verify_file(
    stack_settings: Settings, pki: DevPki, re_signed: bytes, tmp_path: Path
) -> None:
    """A key the archive signed records with earlier (rotated since) is the hospital's: the
    catalog on this machine says so."""
    forger_then_hospital = _certificate(pki.cert_path("foreign-signer"))
    row = make_row(1, "run-1")
    row = dataclasses.replace(
        row, signer_cert_sha256=hashlib.sha256(forger_then_hospital.dump()).hexdigest()
    )
    settings = stack_settings.model_copy(
        update={
            "catalog": stack_settings.catalog.model_copy(
                update={"catalog_dir": tmp_path / "catalog"}
            )
        }
    )
    Catalog.open(settings.catalog_dir, create=True).append(
        [row], run_id="run-1", now=datetime.now(UTC), store=MemoryStore(), retain_until=RETAIN
    )
    code, output = _verify_file(settings, re_signed, tmp_path)
    assert code == 0, output


def test_a_validating_host_pins_the_signer_certificate_without_the_pkcs12_password(
    stack_settings: Settings, pki: DevPki, genuine: bytes, re_signed: bytes, tmp_path: Path
) -> None:
    # The portal and the verification hosts need the hospital's certificate, not its key: with
    # EMR_ARCHIVE_SIGNER__CERTIFICATE they never open the PKCS#12 (its password is absent here).
    settings = _with_signer(
        _broad_trust(stack_settings, pki),
        certificate=pki.cert_path("hospital-signer"),
        pkcs12_password_file=tmp_path / "no-such.pass",
    )
    code, output = _verify_file(settings, genuine, tmp_path)
    assert code == 0, output
    code, output = _verify_file(settings, re_signed, tmp_path)
    assert code == 1, output
    assert "sig.unknown_signer" in output


def test_signing_with_a_key_other_than_the_configured_certificate_is_refused(
    pki: DevPki,
) -> None:
    # Every record it signed would fail verification on the hosts that pin the certificate.
    config = SignerConfig(
        pkcs12_path=pki.signer.p12,
        password_file=pki.signer.password_file,
        tsa_url=pki.tsa_url,
        trust_roots=(pki.trust_root,),
        tsa_trust_roots=(pki.trust_root,),
        certificate=pki.cert_path("foreign-signer"),
    )
    with pytest.raises(ConfigError, match="is not the one of the certificate"):
        DocumentSigner.create(config)
    assert DocumentSigner.create(
        dataclasses.replace(config, certificate=pki.cert_path("hospital-signer"))
    )

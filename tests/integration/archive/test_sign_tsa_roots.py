"""The signer takes timestamps only from a TSA under the TSA trust roots, as validation requires.

Validation refuses a record whose timestamps come from a TSA outside
``EMR_ARCHIVE_SIGNER__TSA_TRUST_ROOTS`` (``sig.untrusted_tsa``); the signer used to check the TSA
against the *signer's* trust roots instead. With a national root list among those (as the
README's production example has), a misconfigured or hijacked TSA URL made the archive sign and
lock, for decades, records that every later verification fails. And a TSA provider under a CA of
its own, listed only in the TSA trust roots, was refused. Real PKI service (the session stack's),
real pyHanko.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from asn1crypto import pem, x509

from archive.core.errors import CertificateRefusedError
from archive.render import Renderer
from archive.sign import (
    DocumentSigner,
    SignedDocument,
    SignerConfig,
    TrustPolicy,
    validate_pdf_signatures,
)
from archive.store import S3ObjectStore
from infra.pki import DevPki, P12Credential
from infra.settings import AppSettings as Settings
from tests.support.fhir import canonical, example_bundle
from tests.support.nightly import Export, make_export, run_once

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pki(stack_settings: Settings) -> DevPki:
    return DevPki(pki_dir=stack_settings.pki_dir, port=stack_settings.stack.pki_port)


@pytest.fixture(scope="module")
def document() -> bytes:
    bundle = example_bundle()
    created_at = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    return Renderer.create().render(bundle, canonical(bundle), created_at=created_at).pdf


def _config(
    credential: P12Credential,
    *,
    tsa_url: str,
    signer_roots: tuple[Path, ...],
    tsa_roots: tuple[Path, ...],
) -> SignerConfig:
    return SignerConfig(
        pkcs12_path=credential.p12,
        password_file=credential.password_file,
        tsa_url=tsa_url,
        trust_roots=signer_roots,
        tsa_trust_roots=tsa_roots,
    )


def _certificate(path: Path) -> x509.Certificate:
    return x509.Certificate.load(pem.unarmor(path.read_bytes())[2])


@pytest.mark.parametrize("signer_list", ["broad", "hospital CA only"])
def test_a_tsa_outside_the_tsa_trust_roots_is_refused_before_anything_is_signed(
    signer_list: str, pki: DevPki
) -> None:
    # "broad": the signer trust list also holds the foreign TSA's CA, as a national list may.
    signer_roots = (pki.trust_root, pki.untrusted_root) if signer_list == "broad" else ()
    config = _config(
        pki.signer,
        tsa_url=pki.foreign_tsa_url,
        signer_roots=signer_roots or (pki.trust_root,),
        tsa_roots=(pki.trust_root,),
    )
    with pytest.raises(CertificateRefusedError) as refused:
        DocumentSigner.create(config)
    assert refused.value.reason == "untrusted"
    assert refused.value.subject_cn == "Foreign TSA"
    message = str(refused.value)
    assert message.startswith("refusing timestamps signed with the TSA certificate 'Foreign TSA'")
    assert "EMR_ARCHIVE_SIGNER__TSA_TRUST_ROOTS" in message
    assert refused.value.exit_code != 0


def test_a_tsa_under_a_ca_only_the_tsa_trust_roots_hold_is_used_and_validates(
    pki: DevPki, document: bytes
) -> None:
    """A TSA provider with a CA of its own: listed for timestamps, never for signers."""
    config = _config(
        pki.signer,
        tsa_url=pki.foreign_tsa_url,
        signer_roots=(pki.trust_root,),
        tsa_roots=(pki.trust_root, pki.untrusted_root),
    )
    [signed] = DocumentSigner.create(config).sign_batch([document])
    assert isinstance(signed, SignedDocument), signed
    tsa = _certificate(pki.cert_path("foreign-tsa"))
    assert signed.tsa_cert_sha256 == hashlib.sha256(tsa.dump()).hexdigest()
    hospital = _certificate(pki.cert_path("hospital-signer"))
    trust = TrustPolicy(
        signer_roots=(_certificate(pki.trust_root),),
        tsa_roots=(_certificate(pki.trust_root), _certificate(pki.untrusted_root)),
        hospital_signers=frozenset({hashlib.sha256(hospital.dump()).hexdigest()}),
    )
    report = validate_pdf_signatures(signed.pdf, trust=trust)
    assert report.passed, report.reason


def test_a_signer_under_a_ca_only_the_tsa_trust_roots_hold_is_refused(pki: DevPki) -> None:
    # The signer and the TSA share one validation context (one DSS): its roots are both lists,
    # which must not let a TSA's CA vouch for a signer.
    config = _config(
        pki.credential("untrusted-signer"),
        tsa_url=pki.tsa_url,
        signer_roots=(pki.trust_root,),
        tsa_roots=(pki.trust_root, pki.untrusted_root),
    )
    with pytest.raises(CertificateRefusedError, match="EMR_ARCHIVE_SIGNER__TRUST_ROOTS") as refused:
        DocumentSigner.create(config)
    assert refused.value.reason == "untrusted"
    assert "refusing to sign with the certificate" in str(refused.value)


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    return make_export(tmp_path_factory.mktemp("tsa-export"), encounters=6, seed=5)


def test_a_nightly_run_pointed_at_a_foreign_tsa_stores_nothing_and_fails(
    settings: Settings, pki: DevPki, export: Export
) -> None:
    foreign = settings.model_copy(
        update={
            "signer": settings.signer.model_copy(
                update={
                    "pkcs12_path": pki.signer.p12,
                    "pkcs12_password_file": pki.signer.password_file,
                    "tsa_url": pki.foreign_tsa_url,
                    "trust_roots": (pki.trust_root, pki.untrusted_root),
                    "tsa_trust_roots": (pki.trust_root,),
                }
            )
        }
    )
    with pytest.raises(CertificateRefusedError, match="EMR_ARCHIVE_SIGNER__TSA_TRUST_ROOTS"):
        run_once(foreign, export)
    store = S3ObjectStore.from_settings(settings)
    assert list(store.list_versions("records/")) == []
    assert list(store.list_versions("catalog/")) == []

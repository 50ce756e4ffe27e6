"""Parsed certificates and revocation data kept per thread never stand in for other bytes
(archive.sign.parsed_der).

The attack follows a genuine certificate's use (the thread's cache warm with it): a CMS object
carrying a copy of it whose signature was altered must get the verdict a cold process gives. The
same attack against a naive key (the certificate's signed part, which the forgery keeps) passes:
the test can fail.
"""

from __future__ import annotations

import ast
import asyncio
import datetime as dt
import inspect
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from asn1crypto import cms, x509
from asn1crypto.crl import CertificateList
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import PathBuildingError, ValidationError

from archive.sign import parsed_der
from tests.support.mini_pki import MiniCa, asn1

T0 = dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def ca() -> MiniCa:
    return MiniCa("Parsed DER Test CA", start=T0 - dt.timedelta(days=365))


@pytest.fixture(autouse=True)
def cold_thread() -> Iterator[None]:
    parsed_der.forget()
    yield
    parsed_der.forget()


def signed_data(cert: x509.Certificate) -> cms.SignedData:
    """A CMS object carrying ``cert`` as its signer's, read back from its bytes."""
    sid = {"issuer": cert.issuer, "serial_number": cert.serial_number}
    value = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [{"algorithm": "sha256"}],
            "encap_content_info": {"content_type": "data"},
            "certificates": [cert],
            "signer_infos": [
                {
                    "version": "v1",
                    "sid": cms.SignerIdentifier({"issuer_and_serial_number": sid}),
                    "digest_algorithm": {"algorithm": "sha256"},
                    "signature_algorithm": {"algorithm": "sha256_ecdsa"},
                    "signature": b"\x00",
                }
            ],
        }
    )
    return cms.SignedData.load(value.dump())


def forged(cert: x509.Certificate) -> x509.Certificate:
    """The same signed part (issuer, serial, subject, key), another signature value."""
    copy = x509.Certificate.load(cert.dump())
    signature = bytearray(copy["signature_value"].native)
    signature[-1] ^= 0x01
    copy["signature_value"] = bytes(signature)
    return x509.Certificate.load(copy.dump(force=True))


def verdict(ca: MiniCa, data: cms.SignedData) -> str:
    signer = parsed_der.extract_certificate_info(data).signer_cert
    context = ValidationContext(
        trust_roots=[ca.asn1], allow_fetching=False, revocation_mode="soft-fail", moment=T0
    )
    try:
        validator = CertificateValidator(signer, validation_context=context)
        asyncio.run(validator.async_validate_usage(set()))  # type: ignore[no-untyped-call]
    except PathBuildingError:
        return "no path"
    except ValidationError as e:
        return type(e).__name__
    return "valid"


def attack(ca: MiniCa) -> tuple[str, str]:
    """(verdict after the genuine one in this thread, verdict in a cold thread)."""
    genuine = asn1(ca.issue("signer", T0 - dt.timedelta(days=30), T0 + dt.timedelta(days=30)))
    bad = signed_data(forged(genuine))
    assert verdict(ca, signed_data(genuine)) == "valid"
    warm = verdict(ca, bad)
    cold: list[str] = []
    thread = threading.Thread(target=lambda: cold.append(verdict(ca, bad)))
    thread.start()
    thread.join()
    return warm, cold[0]


def test_a_forged_copy_after_the_genuine_certificate_gets_its_cold_verdict(ca: MiniCa) -> None:
    warm, cold = attack(ca)
    assert cold != "valid"
    assert warm == cold


def test_a_naive_key_would_pass_the_forgery(ca: MiniCa, monkeypatch: pytest.MonkeyPatch) -> None:
    def signed_part(kind: type, der: bytes) -> Any:
        return kind, x509.Certificate.load(der)["tbs_certificate"].dump()

    monkeypatch.setattr(parsed_der, "_key", signed_part)
    warm, cold = attack(ca)
    assert (warm, cold) == ("valid", "PathValidationError")


def test_the_same_bytes_give_the_kept_object_in_one_thread_only(ca: MiniCa) -> None:
    der = asn1(ca.issue("tsa", T0, T0 + dt.timedelta(days=1))).dump()
    first = parsed_der.load(x509.Certificate, der)
    assert parsed_der.load(x509.Certificate, bytes(der)) is first
    other: list[Any] = []
    thread = threading.Thread(target=lambda: other.append(parsed_der.load(x509.Certificate, der)))
    thread.start()
    thread.join()
    assert other[0] is not first
    assert other[0].dump() == der
    # Another type over the same bytes is another question.
    assert parsed_der.load(CertificateList, der) is not first


def test_extracted_certificates_match_pyhankos(ca: MiniCa) -> None:
    genuine = asn1(ca.issue("signer", T0, T0 + dt.timedelta(days=1)))
    data = signed_data(genuine)
    ours = parsed_der.extract_certificate_info(data)
    theirs = parsed_der._ORIGINAL(data)
    assert ours.signer_cert.dump() == theirs.signer_cert.dump() == genuine.dump()
    assert [c.dump() for c in ours.other_certs] == [c.dump() for c in theirs.other_certs]
    assert parsed_der.extract_certificate_info(signed_data(genuine)).signer_cert is ours.signer_cert


def test_pyhanko_reads_the_stood_in_names_only_to_load() -> None:
    """The stand-ins (parsed_der._PARSERS) only offer ``load``: any other use pyHanko makes of
    those names at run time (an isinstance, an attribute) would change on an upgrade."""
    for module, name, _ in parsed_der._PARSERS:
        tree = ast.parse(inspect.getsource(module))
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        annotations = {
            id(n)
            for node in ast.walk(tree)
            for a in (getattr(node, "annotation", None), getattr(node, "returns", None))
            if a is not None
            for n in ast.walk(a)
        }
        uses = [
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.Name) and n.id == name and id(n) not in annotations
        ]
        assert uses, (module.__name__, name)
        for use in uses:
            node: ast.AST = parents[use]
            if name.startswith("asn1_"):  # the module: <module>.<type>.load
                assert isinstance(node, ast.Attribute), (module.__name__, name, use.lineno)
                assert hasattr(parsed_der._STANDINS[name], node.attr)
                node = parents[node]
            assert isinstance(node, ast.Attribute), (module.__name__, name, use.lineno)
            assert node.attr == "load", (module.__name__, name, use.lineno)

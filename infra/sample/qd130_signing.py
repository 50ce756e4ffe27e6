"""A development facility's XML signature for the QĐ 130 sample: the ``CHUKYDONVI`` a HIS adds.

A hospital signs its ``GIAMDINHHS`` file with its own key (XML-DSig, enveloped, one reference
to the whole document, the ``ds:Signature`` inside ``CHUKYDONVI``). For the sample and the tests a
development facility stands in: an RSA key generated on first use under a directory the caller
names (``var/`` in the demo, a test's tmp dir; never committed), and a self-signed certificate
derived from it deterministically, so the same key always yields the same certificate and, RSA
PKCS#1 v1.5 being deterministic, the same file bytes for the same seed.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.signer import XMLSigner

KEY_FILE: Final = "facility-xmldsig.key.pem"
CERT_FILE: Final = "facility-xmldsig.cert.pem"
_PLACEHOLDER: Final = (
    b'<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Id="placeholder"/>'
)


@dataclass(frozen=True, slots=True)
class DevFacility:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def dev_facility(directory: Path, *, name: str = "Bệnh viện Mẫu (dev)") -> DevFacility:
    """The development facility whose key lives in ``directory`` (created 0600 on first use);
    its certificate is also written there, for ``EMR_ARCHIVE_ARCHIVE__FACILITY_CERTS``."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_path = directory / KEY_FILE
    if key_path.exists():
        loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        assert isinstance(loaded, rsa.RSAPrivateKey)
        key = loaded
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{name} XML signing"),
        ]
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(hashlib.sha256(public).digest()[:16], "big") >> 1)
        .not_valid_before(datetime(2024, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2044, 1, 1, tzinfo=UTC))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    facility = DevFacility(key, cert)
    (directory / CERT_FILE).write_bytes(facility.cert_pem)
    return facility


def sign_file(data: bytes, facility: DevFacility, *, reference_uri: str | None = None) -> bytes:
    """``data`` (a ``GIAMDINHHS`` file with an empty ``CHUKYDONVI``) signed as a HIS signs it:
    the signature placed in ``CHUKYDONVI``, over the whole document unless ``reference_uri``
    names an element (which only attack tests do)."""
    marker = b"<CHUKYDONVI></CHUKYDONVI>"
    if data.count(marker) != 1:
        raise ValueError("the file has no empty CHUKYDONVI to sign into")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    root = etree.fromstring(
        data.replace(marker, b"<CHUKYDONVI>" + _PLACEHOLDER + b"</CHUKYDONVI>"), parser
    )
    signer = XMLSigner(
        signature_algorithm=SignatureMethod.RSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_1,
    )
    signed = signer.sign(root, key=facility.key, cert=[facility.cert], reference_uri=reference_uri)
    head = data[: data.index(b"?>") + 2] + b"\n" if data.startswith(b"<?xml") else b""
    body: bytes = etree.tostring(signed, encoding="utf-8")
    return head + body + b"\n"

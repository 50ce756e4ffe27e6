"""An in-process TSA for the evidence-record unit tests (pyHanko's DummyTimeStamper signing
with a throwaway CA and TSA certificate), and the DSS vectors read from their manifest.

Integration tests use the real certomancer TSA instead (tests/support/pki_service.py).
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from asn1crypto import cms, keys, x509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

from archive.evidence import DataObject
from tests.support.paths import REPO

VECTORS = REPO / "tests" / "vectors" / "rfc4998"  # copied from DSS with its README (LGPL 2.1)


@dataclass(frozen=True)
class LocalTsa:
    root: x509.Certificate
    cert: x509.Certificate
    key: keys.PrivateKeyInfo

    def stamp(self, digest: bytes, algorithm: str, at: datetime) -> cms.ContentInfo:
        stamper = DummyTimeStamper(self.cert, self.key, fixed_dt=at)
        token: cms.ContentInfo = asyncio.run(stamper.async_timestamp(digest, algorithm))
        return token


def _name(cn: str) -> cx509.Name:
    return cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, cn)])


@cache
def local_tsa(not_before: datetime, not_after: datetime, name: str = "Test TSA") -> LocalTsa:
    """A root valid 2000-2100 and a TSA certificate valid in [not_before, not_after]."""
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root = (
        cx509.CertificateBuilder()
        .subject_name(_name(f"{name} Root"))
        .issuer_name(_name(f"{name} Root"))
        .public_key(root_key.public_key())
        .serial_number(cx509.random_serial_number())
        .not_valid_before(datetime(2000, 1, 1).astimezone())
        .not_valid_after(datetime(2100, 1, 1).astimezone())
        .add_extension(cx509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    cert = (
        cx509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(root.subject)
        .public_key(tsa_key.public_key())
        .serial_number(cx509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(cx509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    der = serialization.Encoding.DER
    key_der = tsa_key.private_bytes(
        der, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return LocalTsa(
        root=x509.Certificate.load(root.public_bytes(der)),
        cert=x509.Certificate.load(cert.public_bytes(der)),
        key=keys.PrivateKeyInfo.load(key_der),
    )


def _ca_usage() -> cx509.KeyUsage:
    return cx509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def after(moment: datetime, days: int) -> datetime:
    return moment + timedelta(days=days)


# --- the DSS vectors ----------------------------------------------------------------------------


def vector_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads((VECTORS / "manifest.json").read_text("utf-8"))
    return cases


def vector_objects(case: dict[str, Any]) -> list[DataObject]:
    """The data objects a case supplies, as DSS supplies them (bytes, or only digests)."""
    objects = [DataObject(data=(VECTORS / f).read_bytes()) for f in case.get("detached_data", ())]
    objects += [DataObject(data=bytes.fromhex(o["hex"])) for o in case.get("detached_inline", ())]
    objects += [
        DataObject(digests={a: base64.b64decode(v) for a, v in o["digests"].items()})
        for o in case.get("detached_digests", ())
    ]
    return objects

"""In-memory twin of a CSC service's transport, for pure unit tests of the batching only.

It answers ``credentials/authorize`` and ``signatures/signHash`` the way certomancer-csc-dummy
does (an EC P-256 key signs the submitted hashes), in the event loop of the test, and lets a test
hold an answer back (``hold``) or fail it, so races between the commit timer, documents arriving
and a commit in flight happen in a chosen order. Integration tests use the real service
(tests/support/csc_service.py), never this.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from asn1crypto import x509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from pyhanko.sign.signers.csc_signer import CSCCredentialInfo, CSCServiceSessionInfo

__all__ = ["CscTwin"]


def _credential(key: ec.EllipticCurvePrivateKey, multisign: int) -> CSCCredentialInfo:
    name = cx509.Name([cx509.NameAttribute(cx509.NameOID.COMMON_NAME, "CSC twin signer")])
    now = datetime.now(UTC)
    cert = (
        cx509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(cx509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    certificate = x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    return CSCCredentialInfo(
        signing_cert=certificate,
        chain=[],
        supported_mechanisms=frozenset({"sha256_ecdsa"}),
        max_batch_size=multisign,
        hash_pinning_required=True,
        response_data={"key": {"status": "enabled"}, "authMode": "implicit"},
    )


class _Answer:
    def __init__(self, body: dict[str, Any]) -> None:
        self._body = body

    async def json(self) -> dict[str, Any]:
        return self._body


@dataclass
class CscTwin:
    """``post`` as ``CSCSigner`` calls it; ``requests`` lists the endpoints asked, in order."""

    multisign: int = 10
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    hold: asyncio.Event | None = None  # set by the test to let answers go
    fail: bool = False  # answer every request with a connection error
    requests: list[str] = field(default_factory=list)
    hashes_signed: int = 0
    arrived: asyncio.Event | None = None  # set when a request arrives

    def __post_init__(self) -> None:
        self.credential = _credential(self.key, self.multisign)
        self.session = CSCServiceSessionInfo("http://csc.twin", "twin/signer", oauth_token="t")

    @asynccontextmanager
    async def post(self, url: str, **kwargs: Any) -> AsyncIterator[_Answer]:
        endpoint = url.removeprefix("http://csc.twin/csc/v1/")
        self.requests.append(endpoint)
        if self.arrived is not None:
            self.arrived.set()
        if self.hold is not None:
            await self.hold.wait()
        if self.fail:
            raise aiohttp.ClientConnectionError("the twin is down")
        body = kwargs["json"]
        if endpoint == "credentials/authorize":
            yield _Answer({"SAD": "sad-" + str(len(self.requests))})
        else:
            assert len(body["hash"]) <= self.multisign, "more hashes than multisign"
            self.hashes_signed += len(body["hash"])
            yield _Answer({"signatures": [self._sign(h) for h in body["hash"]]})

    def _sign(self, b64_hash: str) -> str:
        digest = base64.b64decode(b64_hash)
        signature = self.key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        return base64.b64encode(signature).decode()

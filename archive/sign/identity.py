"""Who signs: the :class:`SigningKey` protocol every key kind implements, and the facts about its
certificate (:class:`SignerIdentity`) that outcomes and errors report.

A key in memory (PKCS#12, :mod:`archive.sign.key`) and a key on a PKCS#11 token or HSM
(:mod:`archive.sign.token_key`) are two implementations; the run only asks a key for its
certificate, its chain and a pyHanko signer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from asn1crypto import x509
from pyhanko.sign.signers.pdf_cms import Signer

from archive.sign.certificates import common_name

__all__ = ["SignerIdentity", "SigningKey"]


@dataclass(frozen=True, slots=True)
class SignerIdentity:
    """Who signs: the facts about the signing certificate that outcomes and errors report."""

    subject_cn: str
    subject: str
    fingerprint_sha256: str
    not_before: datetime
    not_after: datetime
    certificate_der: bytes

    @classmethod
    def of(cls, cert: x509.Certificate) -> SignerIdentity:
        validity = cert["tbs_certificate"]["validity"]
        return cls(
            subject_cn=common_name(cert),
            subject=cert.subject.human_friendly,
            fingerprint_sha256=hashlib.sha256(cert.dump()).hexdigest(),
            not_before=validity["not_before"].native,
            not_after=validity["not_after"].native,
            certificate_der=cert.dump(),
        )


class SigningKey(Protocol):
    """A signing key and its certificate chain: in memory (PKCS#12) or on a token or HSM."""

    @property
    def identity(self) -> SignerIdentity: ...

    @property
    def certificate(self) -> x509.Certificate: ...

    @property
    def chain(self) -> tuple[x509.Certificate, ...]: ...

    def pyhanko_signer(self) -> Signer: ...

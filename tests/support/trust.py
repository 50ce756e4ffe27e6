"""The trust policy a test validates with: the development PKI's CA for signers and TSAs, the
hospital's signing certificate, and whichever other signers a test treats as the hospital's own
(its expired or revoked key, to reach the verdict about expiry or revocation)."""

from __future__ import annotations

from archive.sign import TrustPolicy
from archive.sign.certificates import cert_sha256
from archive.sign.config import load_certificates
from infra.pki import DevPki


def dev_trust(pki: DevPki, *also: str) -> TrustPolicy:
    """``also``: labels of further signers accepted as the hospital's (e.g. ``expired-signer``)."""
    [root] = load_certificates(pki.trust_root)
    labels = ("hospital-signer", *also)
    signers = [cert for label in labels for cert in load_certificates(pki.cert_path(label))]
    return TrustPolicy(
        signer_roots=(root,),
        tsa_roots=(root,),
        hospital_signers=frozenset(cert_sha256(c) for c in signers),
    )

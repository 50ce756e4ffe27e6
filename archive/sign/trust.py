"""Whom a validation believes: the one rule every path that validates a PDF goes through.

A signature that chains to the trust roots is not yet the hospital's: with a national root CA
configured, anyone holding a certificate of that CA could re-sign a record's original and pass.
So a :class:`TrustPolicy` holds, besides the CAs a signer must chain to, the hospital's own
signing certificates (by SHA-256: the configured signer, past keys listed in
``EMR_ARCHIVE_SIGNER__PINNED_SIGNERS``, and every signer the catalog has recorded), and the CAs
every timestamp's TSA must chain to (``EMR_ARCHIVE_SIGNER__TSA_TRUST_ROOTS``). Settings go in
through :meth:`TrustPolicy.load`; the validator (``archive.sign.validate``) asks it
:meth:`~TrustPolicy.judge_signer` and checks TSA paths against :attr:`~TrustPolicy.tsa_roots`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from asn1crypto import x509

from archive.core.errors import ConfigError
from archive.core.settings import normalise_fingerprint
from archive.sign.certificates import cert_sha256
from archive.sign.config import SignerConfig, load_certificates, load_trust_roots
from archive.sign.key import configured_certificate

__all__ = ["TrustPolicy", "describe"]

PINNED_SETTING = "EMR_ARCHIVE_SIGNER__PINNED_SIGNERS"


@dataclass(frozen=True, slots=True)
class TrustPolicy:
    """The CAs signers and TSAs must chain to, and the hospital's signing certificates."""

    signer_roots: tuple[x509.Certificate, ...]
    tsa_roots: tuple[x509.Certificate, ...]
    hospital_signers: frozenset[str]  # SHA-256 of the certificates, lowercase hex

    @classmethod
    def load(
        cls,
        config: SignerConfig,
        *,
        signer: x509.Certificate | None = None,
        known_signers: Iterable[str] = (),
    ) -> TrustPolicy:
        """From the settings: ``signer`` is the configured signer's certificate when the caller
        holds it already (else it is read from the PKCS#12); ``known_signers`` are the catalog's."""
        configured = signer if signer is not None else configured_certificate(config)
        pins = {cert_sha256(configured), *known_signers}
        pins |= {_pinned(entry) for entry in config.pinned_signers}
        return cls(
            signer_roots=tuple(load_trust_roots(config.trust_roots)),
            tsa_roots=tuple(
                load_trust_roots(
                    config.tsa_trust_roots, setting="EMR_ARCHIVE_SIGNER__TSA_TRUST_ROOTS"
                )
            ),
            hospital_signers=frozenset(pins),
        )

    def with_signers(self, fingerprints: Iterable[str]) -> TrustPolicy:
        """The same policy, also accepting ``fingerprints`` (the catalog's, read later)."""
        return replace(self, hospital_signers=self.hospital_signers | frozenset(fingerprints))

    @property
    def all_roots(self) -> list[x509.Certificate]:
        """Every anchor pyHanko may build a path to; who may sign or timestamp is decided on top
        (a TSA root is no signer's root, and the reverse)."""
        seen: dict[bytes, x509.Certificate] = {}
        for cert in (*self.signer_roots, *self.tsa_roots):
            seen.setdefault(cert.dump(), cert)
        return list(seen.values())

    def judge_signer(self, cert: x509.Certificate) -> tuple[str, str] | None:
        """``sig.unknown_signer`` with the certificate's subject and fingerprint, or None."""
        if cert_sha256(cert) in self.hospital_signers:
            return None
        return (
            "sig.unknown_signer",
            f"signed by {describe(cert)}, which is not one of the hospital's signing "
            f"certificates (the configured signer, the catalog's signers, {PINNED_SETTING})",
        )


def describe(cert: x509.Certificate) -> str:
    """Subject and SHA-256 of a certificate: what an inspector needs to identify it."""
    return f"{cert.subject.human_friendly!r} (SHA-256 {cert_sha256(cert)})"


def _pinned(entry: str) -> str:
    """A pinned signer's fingerprint: given as one, or read from its certificate file."""
    fingerprint = normalise_fingerprint(entry)
    if fingerprint is not None:
        return fingerprint
    certs = load_certificates(Path(entry))
    if len(certs) != 1:
        raise ConfigError(f"{PINNED_SETTING}: {entry} must hold exactly one certificate")
    return cert_sha256(certs[0])

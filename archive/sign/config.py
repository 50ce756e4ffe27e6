"""Where the signing key, the TSA and the trust roots are, and how hard to try the trust services.

Settings go in, small frozen values come out: :class:`SignerConfig` crosses into worker processes
(it is picklable, a loaded key is not); validators (the verifier, the retrieval service) turn it
into a :class:`~archive.sign.trust.TrustPolicy`: the CAs a signer and a TSA must chain to, and
the hospital's own signing certificates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from asn1crypto import pem, x509

from archive.core.errors import ConfigError

if TYPE_CHECKING:
    from archive.core.settings import Settings

__all__ = [
    "MD_ALGORITHM",
    "CscConfig",
    "RetryPolicy",
    "SignerConfig",
    "load_certificates",
    "load_trust_roots",
]

MD_ALGORITHM = "sha256"  # of signatures, timestamps and their imprints


@dataclass(frozen=True, slots=True)
class SignerConfig:
    """Where the signing key, the TSA and the trust roots are: picklable, for worker processes."""

    pkcs12_path: Path | None  # None: the key is remote (``csc``)
    tsa_url: str
    trust_roots: tuple[Path, ...]  # CAs a signer's certificate must chain to
    tsa_trust_roots: tuple[Path, ...]  # CAs every timestamp's TSA certificate must chain to
    pinned_signers: tuple[str, ...] = ()  # past hospital keys: SHA-256 hex or certificate files
    certificate: Path | None = None  # the signer's certificate alone, for hosts that only validate
    password_file: Path | None = None
    password_env: str | None = None
    ocsp_url_override: str | None = None
    csc: CscConfig | None = None  # remote signing over the CSC API instead of a PKCS#12

    @classmethod
    def from_settings(cls, settings: Settings) -> SignerConfig:
        signer = settings.signer
        if settings.uses_dev_pki:
            # The layout infra/pki.py generates; the archive package may not import infra.
            signers = settings.pki_dir / "signers"
            return cls(
                pkcs12_path=signers / "hospital-signer.p12",
                password_file=signers / "hospital-signer.pass",
                tsa_url=settings.tsa_url,
                trust_roots=(settings.pki_dir / "trust-root.pem",),
                tsa_trust_roots=(settings.pki_dir / "trust-root.pem",),
                pinned_signers=signer.pinned_signers,
                certificate=signer.certificate,
                ocsp_url_override=signer.ocsp_url_override,
            )
        return cls(
            pkcs12_path=signer.pkcs12_path,
            password_file=signer.pkcs12_password_file,
            password_env=signer.pkcs12_password_env,
            tsa_url=settings.tsa_url,
            trust_roots=signer.trust_roots,
            tsa_trust_roots=signer.tsa_trust_roots,
            pinned_signers=signer.pinned_signers,
            certificate=signer.certificate,
            ocsp_url_override=signer.ocsp_url_override,
            csc=CscConfig.from_settings(settings),
        )


@dataclass(frozen=True, slots=True)
class CscConfig:
    """Where a remote signing service (CSC API v1) is, and how this process authenticates to it.

    The access token is named (a 0600 file or an environment variable), never held here: this
    value crosses into worker processes and may be printed."""

    service_url: str  # the part before /csc/v1/...
    credential_id: str
    token_file: Path | None = None
    token_env: str | None = None
    batch_size: int = 50  # signatures per authorisation, capped by the credential's multisign

    @classmethod
    def from_settings(cls, settings: Settings) -> CscConfig | None:
        signer = settings.signer
        if signer.csc_service_url is None:
            return None
        assert signer.csc_credential_id is not None  # settings: a CSC signer is all or nothing
        return cls(
            service_url=signer.csc_service_url,
            credential_id=signer.csc_credential_id,
            token_file=signer.csc_token_file,
            token_env=signer.csc_token_env,
            batch_size=signer.csc_batch_size,
        )


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded exponential backoff for the TSA and revocation servers."""

    attempts: int = 3
    first_delay_s: float = 0.5
    max_delay_s: float = 4.0
    request_timeout_s: float = 10.0

    def delays(self) -> list[float]:
        """Sleeps between attempts: attempts - 1 of them."""
        return [min(self.first_delay_s * 2**i, self.max_delay_s) for i in range(self.attempts - 1)]


def load_trust_roots(
    paths: Sequence[Path], *, setting: str = "EMR_ARCHIVE_SIGNER__TRUST_ROOTS"
) -> list[x509.Certificate]:
    """PEM (one or more certificates) or DER files; an empty list is refused."""
    roots = [cert for path in paths for cert in load_certificates(path)]
    if not roots:
        raise ConfigError(f"no trust roots configured: set {setting}")
    return roots


def load_certificates(path: Path) -> list[x509.Certificate]:
    """The certificates of one PEM (one or more) or DER file."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read the certificate file {path} ({e.strerror})") from e
    try:
        ders = (
            [der for _, _, der in pem.unarmor(data, multiple=True)] if pem.detect(data) else [data]
        )
        certs = [x509.Certificate.load(der, strict=True) for der in ders]
        for cert in certs:
            cert.subject  # noqa: B018 - asn1crypto parses lazily: fail here, not mid-validation
        return certs
    except ValueError as e:
        raise ConfigError(f"{path} holds no readable certificate (PEM or DER)") from e

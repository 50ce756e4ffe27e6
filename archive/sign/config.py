"""Where the signing key, the TSA and the trust roots are, and how hard to try the trust services.

Settings go in, small frozen values come out: :class:`SignerConfig` crosses into worker processes
(it is picklable, a loaded key is not), and validators that never sign (the verifier, the
retrieval service) read only its trust roots through :func:`load_trust_roots`.
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

__all__ = ["MD_ALGORITHM", "RetryPolicy", "SignerConfig", "load_trust_roots"]

MD_ALGORITHM = "sha256"  # of signatures, timestamps and their imprints


@dataclass(frozen=True, slots=True)
class SignerConfig:
    """Where the signing key, the TSA and the trust roots are: picklable, for worker processes."""

    pkcs12_path: Path
    tsa_url: str
    trust_roots: tuple[Path, ...]
    password_file: Path | None = None
    password_env: str | None = None
    ocsp_url_override: str | None = None

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
                ocsp_url_override=signer.ocsp_url_override,
            )
        assert signer.pkcs12_path is not None  # settings: production is all or nothing
        return cls(
            pkcs12_path=signer.pkcs12_path,
            password_file=signer.pkcs12_password_file,
            password_env=signer.pkcs12_password_env,
            tsa_url=settings.tsa_url,
            trust_roots=signer.trust_roots,
            ocsp_url_override=signer.ocsp_url_override,
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


def load_trust_roots(paths: Sequence[Path]) -> list[x509.Certificate]:
    """PEM (one or more certificates) or DER files; an empty list is refused."""
    roots: list[x509.Certificate] = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as e:
            raise ConfigError(f"cannot read the trust root {path} ({e.strerror})") from e
        if pem.detect(data):
            roots += [x509.Certificate.load(der) for _, _, der in pem.unarmor(data, multiple=True)]
        else:
            roots.append(x509.Certificate.load(data))
    if not roots:
        raise ConfigError("no trust roots configured: set EMR_ARCHIVE_SIGNER__TRUST_ROOTS")
    return roots

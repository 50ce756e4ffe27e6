"""Where the signing key, the TSA and the trust roots are, and how hard to try the trust services.

Settings go in, small frozen values come out: :class:`SignerConfig` crosses into worker processes
(it is picklable, a loaded key is not); validators (the verifier, the retrieval service) turn it
into a :class:`~archive.sign.trust.TrustPolicy`: the CAs a signer and a TSA must chain to, and
the hospital's own signing certificates.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from asn1crypto import pem, x509

from archive.core.errors import ConfigError

if TYPE_CHECKING:
    from archive.core.settings import Settings

__all__ = [
    "DEV_TOKEN_LABEL",
    "MD_ALGORITHM",
    "SOFTHSM_MODULE",
    "CscConfig",
    "Pkcs11Config",
    "RetryPolicy",
    "SignerConfig",
    "dev_token_config",
    "load_certificates",
    "load_trust_roots",
    "read_secret",
]

MD_ALGORITHM = "sha256"  # of signatures, timestamps and their imprints
SOFTHSM_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")  # Debian's softhsm2
# The development token (``signer.dev_token``): the layout infra/softhsm.py creates.
DEV_TOKEN_LABEL = "emr-archive-dev"  # noqa: S105 - a token label, not a secret
DEV_KEY_ID = bytes.fromhex("5e01")
DEV_CERT_ID = bytes.fromhex("5e01")


@dataclass(frozen=True, slots=True, kw_only=True)
class Pkcs11Config:
    """A key on a PKCS#11 token or HSM, found by object id (labels of a key and its certificate
    differ on some Vietnamese tokens); picklable, each worker process opens its own session."""

    module: Path
    key_id: bytes
    cert_id: bytes
    token_label: str | None = None
    token_serial: str | None = None
    pin_file: Path | None = None
    pin_env: str | None = None
    chain: tuple[Path, ...] = ()  # certificates completing the chain besides the token's own
    # Variables the module reads when it loads (SoftHSM2: SOFTHSM2_CONF); set only if unset.
    module_environment: tuple[tuple[str, str], ...] = ()

    def read_pin(self, environ: Mapping[str, str] | None = None) -> str:
        pin = read_secret(
            file=self.pin_file,
            env=self.pin_env,
            environ=os.environ if environ is None else environ,
            what="token PIN",
            settings="EMR_ARCHIVE_SIGNER__PKCS11_PIN_FILE or __PKCS11_PIN_ENV",
        )
        return pin.decode()


@dataclass(frozen=True, slots=True, kw_only=True)
class SignerConfig:
    """Where the signing key, the TSA and the trust roots are: picklable, for worker processes.
    The key is in a PKCS#12 file (``pkcs12_path``), on a token (``pkcs11``) or behind a remote
    signing service (``csc``): exactly one."""

    pkcs12_path: Path | None = None  # None: the key is on a token (``pkcs11``) or remote (``csc``)
    pkcs11: Pkcs11Config | None = field(default=None)
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
            on_token = signer.dev_token
            return cls(
                pkcs12_path=None if on_token else signers / "hospital-signer.p12",
                password_file=None if on_token else signers / "hospital-signer.pass",
                pkcs11=dev_token_config(settings) if on_token else None,
                tsa_url=settings.tsa_url,
                trust_roots=(settings.pki_dir / "trust-root.pem",),
                tsa_trust_roots=(settings.pki_dir / "trust-root.pem",),
                pinned_signers=signer.pinned_signers,
                certificate=signer.certificate,
                ocsp_url_override=signer.ocsp_url_override,
            )
        return cls(
            pkcs12_path=signer.pkcs12_path,
            pkcs11=_token_config(settings),
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


def dev_token_config(settings: Settings) -> Pkcs11Config:
    """The development signer's key on a SoftHSM2 token under ``data_dir/softhsm``."""
    base = settings.data_dir / "softhsm"
    return Pkcs11Config(
        module=settings.signer.pkcs11_module or SOFTHSM_MODULE,
        key_id=DEV_KEY_ID,
        cert_id=DEV_CERT_ID,
        token_label=DEV_TOKEN_LABEL,
        pin_file=base / "user.pin",
        module_environment=(("SOFTHSM2_CONF", str(base / "softhsm2.conf")),),
    )


def _token_config(settings: Settings) -> Pkcs11Config | None:
    signer = settings.signer
    if signer.pkcs11_module is None:
        return None
    assert signer.pkcs11_key_id is not None  # settings: a token key is named by its id
    key_id = bytes.fromhex(signer.pkcs11_key_id)
    return Pkcs11Config(
        module=signer.pkcs11_module,
        key_id=key_id,
        cert_id=bytes.fromhex(signer.pkcs11_cert_id) if signer.pkcs11_cert_id else key_id,
        token_label=signer.pkcs11_token_label,
        token_serial=signer.pkcs11_token_serial,
        pin_file=signer.pkcs11_pin_file,
        pin_env=signer.pkcs11_pin_env,
        chain=signer.chain,
    )


def read_secret(
    *,
    file: Path | None,
    env: str | None,
    environ: Mapping[str, str],
    what: str,
    settings: str,
) -> bytes:
    """A password or PIN from an environment variable or a file only its owner can read; never
    from an argument, so it shows in no process list and no log."""
    if env:
        value = environ.get(env)
        if value is None:
            raise ConfigError(f"the {what} variable {env} is not set in this process")
        return value.encode()
    if file is None:
        raise ConfigError(f"no {what} configured: set {settings}")
    try:
        if file.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"{file} is readable by other users: run `chmod 600 {file}`")
        return file.read_bytes().rstrip(b"\r\n")
    except OSError as e:
        raise ConfigError(f"cannot read the {what} file {file} ({e.strerror})") from e


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

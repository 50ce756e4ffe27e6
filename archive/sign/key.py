"""Loading the signing key: a PKCS#12 file read into memory, or a key on a PKCS#11 token or HSM.

:func:`load_signer` goes wherever a signature is made and returns a :class:`SigningKey`; the run
only asks it for its certificate, its chain and a pyHanko signer. Loading is slow on purpose (it
re-validates the key, or opens a token session), so it happens once per process, never per
document.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from asn1crypto import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12
from pyhanko.sign.signers.pdf_cms import Signer
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.util import get_pyca_cryptography_hash, process_pss_params

from archive.core.errors import ConfigError
from archive.sign.attributes import CheapCmsAttributes, FixedCadesAttributes
from archive.sign.config import SignerConfig, load_certificates, read_secret
from archive.sign.identity import SignerIdentity, SigningKey
from archive.sign.token_key import open_token_key

__all__ = ["Pkcs12SigningKey", "configured_certificate", "load_signer"]


@dataclass(frozen=True)
class Pkcs12SigningKey:
    """A key held in memory, read from a PKCS#12 file once per process."""

    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    _signer: Signer = field(repr=False)

    @property
    def identity(self) -> SignerIdentity:
        return SignerIdentity.of(self.certificate)

    def pyhanko_signer(self) -> Signer:
        return self._signer

    @classmethod
    def from_pkcs12(cls, data: bytes, password: bytes, *, source: str) -> Pkcs12SigningKey:
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(data, password)
        except ValueError as e:
            raise ConfigError(
                f"cannot open the PKCS#12 file {source}: wrong password or not a PKCS#12 file"
            ) from e
        if cert is None or not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise ConfigError(f"{source} must hold an RSA or EC private key and its certificate")
        certificate = x509.Certificate.load(cert.public_bytes(Encoding.DER))
        chain = tuple(x509.Certificate.load(c.public_bytes(Encoding.DER)) for c in extra)
        return cls(certificate, chain, _InMemoryKeySigner(key, certificate, chain))


class _InMemoryKeySigner(CheapCmsAttributes, Signer):
    """pyHanko's ``SimpleSigner`` re-parses the private key for every signature (~40 ms for
    RSA-2048, which re-validates the key); this one keeps the parsed key."""

    def __init__(
        self,
        key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
        certificate: x509.Certificate,
        chain: Sequence[x509.Certificate],
    ) -> None:
        registry = SimpleCertificateStore.from_certs(chain)  # type: ignore[no-untyped-call]
        # Roots stay out of the CMS: validators bring their own trust anchors, and the DSS
        # carries the full chains anyway.
        super().__init__(signing_cert=certificate, cert_registry=registry, embed_roots=False)
        self._key = key
        self.signed_attr_prov_spec = FixedCadesAttributes(certificate)

    async def async_sign_raw(
        self, data: bytes, digest_algorithm: str, dry_run: bool = False
    ) -> bytes:
        key = self._key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(data, ec.ECDSA(get_pyca_cryptography_hash(digest_algorithm)))
        mechanism = self.get_signature_mechanism_for_digest(digest_algorithm)
        if mechanism.signature_algo == "rsassa_pss":
            padding, hash_algo = process_pss_params(mechanism["parameters"])
            return key.sign(data, padding, hash_algo)
        return key.sign(data, PKCS1v15(), get_pyca_cryptography_hash(digest_algorithm))


def load_signer(config: SignerConfig, *, environ: Mapping[str, str] | None = None) -> SigningKey:
    """The key ``config`` names; call once per process (it is slow on purpose). A token key is
    opened once per process and shared by every signer of the process."""
    key = _open(config, os.environ if environ is None else environ)
    _same_as_configured_certificate(key.certificate, config)
    return key


def _open(config: SignerConfig, environ: Mapping[str, str]) -> SigningKey:
    if config.pkcs11 is not None:
        return open_token_key(config.pkcs11, environ=environ)
    if config.csc is not None:
        # Remote signing (CSC API), imported only when configured: it brings an HTTP client.
        from archive.sign.csc import load_csc_signer

        return load_csc_signer(config.csc, environ=environ)
    if config.pkcs12_path is None:
        raise ConfigError(
            "no signing key configured: set EMR_ARCHIVE_SIGNER__PKCS12_PATH "
            "(or __PKCS11_MODULE or __CSC_SERVICE_URL)"
        )
    try:
        data = config.pkcs12_path.read_bytes()
    except OSError as e:
        raise ConfigError(
            f"cannot read the PKCS#12 file {config.pkcs12_path} ({e.strerror}): fix "
            "EMR_ARCHIVE_SIGNER__PKCS12_PATH"
        ) from e
    password = read_secret(
        file=config.password_file,
        env=config.password_env,
        environ=environ,
        what="PKCS#12 password",
        settings="EMR_ARCHIVE_SIGNER__PKCS12_PASSWORD_FILE or _PASSWORD_ENV",
    )
    return Pkcs12SigningKey.from_pkcs12(data, password, source=str(config.pkcs12_path))


def configured_certificate(config: SignerConfig) -> x509.Certificate:
    """The hospital's current signing certificate: from ``config.certificate`` when set (no
    private key, no password: what the portal and verification hosts need), else the PKCS#12's."""
    if config.certificate is None:
        return load_signer(config).certificate
    certs = load_certificates(config.certificate)
    if len(certs) != 1:
        raise ConfigError(
            f"{config.certificate} holds {len(certs)} certificates: "
            "EMR_ARCHIVE_SIGNER__CERTIFICATE "
            "must name the hospital's signing certificate alone"
        )
    return certs[0]


def _same_as_configured_certificate(cert: x509.Certificate, config: SignerConfig) -> None:
    # Signing with one key while validating hosts pin another would make every new record fail
    # verification as sig.unknown_signer: refuse at run start instead.
    if config.certificate is not None and configured_certificate(config).dump() != cert.dump():
        raise ConfigError(
            f"the signing key ({_source(config)}) is not the one of the certificate in "
            f"{config.certificate}: fix EMR_ARCHIVE_SIGNER__CERTIFICATE or the key's settings"
        )


def _source(config: SignerConfig) -> str:
    if config.pkcs11 is not None:
        return f"token key id {config.pkcs11.key_id.hex()}"
    if config.csc is not None:
        return f"CSC credential {config.csc.credential_id!r} at {config.csc.service_url}"
    return f"PKCS#12 {config.pkcs12_path}"

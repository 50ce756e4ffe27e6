"""The signing key: who signs, and a pyHanko ``Signer`` that keeps its parsed key.

A :class:`SigningKey` goes in wherever a signature is made; the run only asks it for its
certificate, its chain and a pyHanko signer. PKCS#12 in memory is the one kind today; a PKCS#11
token or HSM is another implementation of the same protocol. Loading is slow on purpose (it
re-validates the key), so it happens once per process, never per document.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from asn1crypto import cms, x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12
from pyhanko.sign.attributes import CMSAttributeProvider, SignedAttributeProviderSpec
from pyhanko.sign.general import as_signing_certificate_v2, simple_cms_attribute
from pyhanko.sign.signers.pdf_cms import Signer
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.util import get_pyca_cryptography_hash, process_pss_params

from archive.core.errors import ConfigError
from archive.sign.certificates import common_name
from archive.sign.config import SignerConfig, load_certificates

__all__ = [
    "Pkcs12SigningKey",
    "SignerIdentity",
    "SigningKey",
    "configured_certificate",
    "load_signer",
]


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
    """A signing key and its certificate chain: PKCS#12 now, a PKCS#11 token or HSM later.

    A PKCS#11 implementation returns a ``pyhanko.sign.pkcs11.PKCS11Signer`` from
    :meth:`pyhanko_signer`; nothing else in this stage needs to change.
    """

    @property
    def identity(self) -> SignerIdentity: ...

    @property
    def certificate(self) -> x509.Certificate: ...

    @property
    def chain(self) -> tuple[x509.Certificate, ...]: ...

    def pyhanko_signer(self) -> Signer: ...


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


class _InMemoryKeySigner(Signer):
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
        self.signed_attr_prov_spec = _FixedCadesAttributes(certificate)

    # asn1crypto copies parsed structures deeply when it nests them (SignerInfo retags the
    # attributes), several ms per signature; objects re-read from their DER copy cheaply.
    async def signed_attrs(self, *args: Any, **kwargs: Any) -> cms.CMSAttributes:
        attrs = await super().signed_attrs(*args, **kwargs)
        return cms.CMSAttributes.load(attrs.dump())

    async def unsigned_attrs(self, *args: Any, **kwargs: Any) -> cms.CMSAttributes | None:
        attrs = await super().unsigned_attrs(*args, **kwargs)
        return None if attrs is None else cms.CMSAttributes.load(attrs.dump())

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


class _FixedCadesAttributes(SignedAttributeProviderSpec):
    """The CAdES signed attributes of a PAdES signature (signing-certificate-v2 only: PAdES
    forbids signing-time), built once per key instead of once per signature."""

    def __init__(self, certificate: x509.Certificate) -> None:
        value = as_signing_certificate_v2(certificate)
        attr = simple_cms_attribute("signing_certificate_v2", value)  # type: ignore[no-untyped-call]
        self._der: bytes = attr.dump()

    def signed_attr_providers(
        self, data_digest: bytes, digest_algorithm: str
    ) -> Iterator[CMSAttributeProvider]:
        yield _FixedAttribute(self._der)


class _FixedAttribute(CMSAttributeProvider):
    def __init__(self, der: bytes) -> None:
        self._der = der

    async def get_attribute(self, dry_run: bool = False) -> cms.CMSAttribute:
        return cms.CMSAttribute.load(self._der)


def load_signer(config: SignerConfig, *, environ: Mapping[str, str] | None = None) -> SigningKey:
    """The key ``config`` names; call once per process (it is slow on purpose)."""
    env = os.environ if environ is None else environ
    if config.csc is not None:
        # Remote signing (CSC API). Imported here: archive.sign.csc builds on this module.
        from archive.sign.csc import load_csc_signer

        remote = load_csc_signer(config.csc, environ=env)
        _same_as_configured_certificate(remote.certificate, config)
        return remote
    return _load_pkcs12(config, env)


def _load_pkcs12(config: SignerConfig, environ: Mapping[str, str]) -> SigningKey:
    if config.pkcs12_path is None:
        raise ConfigError("set EMR_ARCHIVE_SIGNER__PKCS12_PATH (or __CSC_SERVICE_URL)")
    try:
        data = config.pkcs12_path.read_bytes()
    except OSError as e:
        raise ConfigError(
            f"cannot read the PKCS#12 file {config.pkcs12_path} ({e.strerror}): fix "
            "EMR_ARCHIVE_SIGNER__PKCS12_PATH"
        ) from e
    password = _read_password(config, environ)
    key = Pkcs12SigningKey.from_pkcs12(data, password, source=str(config.pkcs12_path))
    _same_as_configured_certificate(key.certificate, config)
    return key


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
        source = (
            f"the CSC credential {config.csc.credential_id!r} at {config.csc.service_url}"
            if config.csc is not None
            else f"the PKCS#12 {config.pkcs12_path}"
        )
        raise ConfigError(
            f"{source} does not hold the certificate in {config.certificate}: fix "
            "EMR_ARCHIVE_SIGNER__CERTIFICATE or the signing key's settings"
        )


def _read_password(config: SignerConfig, environ: Mapping[str, str]) -> bytes:
    if config.password_env:
        value = environ.get(config.password_env)
        if value is None:
            raise ConfigError(
                f"the PKCS#12 password variable {config.password_env} is not set in the "
                "environment of this process"
            )
        return value.encode()
    if config.password_file is None:
        raise ConfigError("set EMR_ARCHIVE_SIGNER__PKCS12_PASSWORD_FILE or _PASSWORD_ENV")
    path = config.password_file
    try:
        if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"{path} is readable by other users: run `chmod 600 {path}`")
        return path.read_bytes().rstrip(b"\r\n")
    except OSError as e:
        raise ConfigError(f"cannot read the PKCS#12 password file {path} ({e.strerror})") from e

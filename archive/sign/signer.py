"""The signing stage: PAdES B-LTA signatures over rendered PDF/A-3b documents.

Each document gets, as incremental updates that leave the PDF/A original byte-for-byte intact:

1. an invisible approval signature (``/ETSI.CAdES.detached``, RSA/ECDSA with SHA-256) carrying a
   signature timestamp from the TSA (B-T);
2. a DSS with the certificates, OCSP responses and CRLs of the signer and TSA chains (B-LT), in
   the same revision as a document timestamp over everything before it (B-LTA).

Why the stage does not call ``pyhanko.sign.signers.async_sign_pdf`` per document: that costs
~160-170 ms CPU per document here; this stage ~15 ms with the same output structure (the batch
test in tests/integration/test_sign.py prints the current figures). Where the time went:

* pyHanko's ``SimpleSigner`` re-parses the private key for every signature, twice per document
  (a dry run to size the signature, then the real one): ~40 ms each for RSA-2048. The key here is
  parsed once per process and the size is estimated once per run.
* Validating the signer's and the TSA's certificate paths, and fetching their OCSP responses and
  CRLs, happens once per run (:meth:`DocumentSigner.create`), which is also where a bad signing
  certificate is refused. Every document reuses the result; a TSA certificate not seen before is
  validated once, when it first appears.
* The TSA client keeps one HTTP session per batch (pyHanko's default builds a TLS context per
  request) and documents are signed concurrently, so TSA round trips overlap.
* The DSS goes into the document timestamp's revision without VRI entries (VRI is optional and
  deprecated in ETSI EN 319 142-1), so there is no third revision to write and re-parse.
* asn1crypto deep-copies parsed structures when it nests them; building the CMS took ~11 ms.
  The signing-certificate-v2 attribute is built once per key, and attribute sets are re-read
  from their DER before pyHanko nests them (same bytes, ~1.5 ms).

What is left per document: two TSA round trips (~3.5 ms client CPU), writing and hashing two
revisions and parsing the input twice (~5 ms), the CMS and the RSA signature (~2 ms).

A signature whose timestamps could not be obtained is never returned: the document comes back
as a :class:`SignFailure` and stays for the next run.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import stat
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from asn1crypto import cms, ocsp, pem, tsp, x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.sign.attributes import CMSAttributeProvider, SignedAttributeProviderSpec
from pyhanko.sign.fields import SigFieldSpec, SigSeedSubFilter
from pyhanko.sign.general import SigningError as PyHankoSigningError
from pyhanko.sign.general import (
    as_signing_certificate_v2,
    extract_certificate_info,
    simple_cms_attribute,
)
from pyhanko.sign.signers import PdfSignatureMetadata, PdfSigner, PdfTimeStamper
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes, Signer
from pyhanko.sign.timestamps import HTTPTimeStamper, TimeStamper
from pyhanko.sign.validation import DocumentSecurityStore
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import (
    ExpiredError,
    InsufficientRevinfoError,
    InvalidCertificateError,
    NotYetValidError,
    PathBuildingError,
    PathValidationError,
    RevokedError,
)
from pyhanko_certvalidator.fetchers import Fetchers, OwnedFetcherBackend
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend
from pyhanko_certvalidator.fetchers.aiohttp_fetchers.ocsp_client import (
    AIOHttpOCSPFetcher,
    _grab_ocsp,
)
from pyhanko_certvalidator.fetchers.aiohttp_fetchers.util import LazySession
from pyhanko_certvalidator.fetchers.common_utils import format_ocsp_request
from pyhanko_certvalidator.path import ValidationPath
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.util import get_pyca_cryptography_hash, process_pss_params

from archive.core.errors import (
    CertificateRefusedError,
    ConfigError,
    RevocationUnavailableError,
    SigningError,
    TimestampUnavailableError,
    TrustServiceUnavailableError,
)

if TYPE_CHECKING:
    from archive.core.settings import Settings

__all__ = [
    "DEFAULT_FIELD_NAME",
    "CertificateRefusedError",
    "DocumentSigner",
    "RetryPolicy",
    "RevocationUnavailableError",
    "SignFailure",
    "SignOutcome",
    "SignedDocument",
    "SignerConfig",
    "SignerIdentity",
    "SigningError",
    "SigningKey",
    "TimestampUnavailableError",
    "TrustServiceUnavailableError",
    "init_worker",
    "load_signer",
    "load_trust_roots",
    "sign_in_worker",
]

DEFAULT_FIELD_NAME = "HospitalSignature"
DOCUMENT_TIMESTAMP_FIELD = "DocumentTimestamp-1"
MD_ALGORITHM = "sha256"
SIGNER_KEY_USAGE = frozenset({"non_repudiation"})
FRESHNESS_MARGIN = timedelta(minutes=1)  # a document takes < 1 s; TSA retries a few more
T = TypeVar("T")


# --- errors (to move to archive/errors.py) ------------------------------------------------------


# --- configuration -------------------------------------------------------------------------------


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


# --- the signing key ---------------------------------------------------------------------------


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
            subject_cn=_common_name(cert),
            subject=cert.subject.human_friendly,
            fingerprint_sha256=hashlib.sha256(cert.dump()).hexdigest(),
            not_before=validity["not_before"].native,
            not_after=validity["not_after"].native,
            certificate_der=cert.dump(),
        )


class SigningKey(Protocol):
    """A signing key and its certificate chain: PKCS#12 now, a PKCS#11 token or HSM later.

    A PKCS#11 implementation returns a ``pyhanko.sign.pkcs11.PKCS11Signer`` from
    :meth:`pyhanko_signer`; nothing else in this module needs to change.
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
    """Read the PKCS#12 file named by ``config``; call once per process (it is slow on purpose)."""
    try:
        data = config.pkcs12_path.read_bytes()
    except OSError as e:
        raise ConfigError(
            f"cannot read the PKCS#12 file {config.pkcs12_path} ({e.strerror}): fix "
            "EMR_ARCHIVE_SIGNER__PKCS12_PATH"
        ) from e
    password = _read_password(config, os.environ if environ is None else environ)
    return Pkcs12SigningKey.from_pkcs12(data, password, source=str(config.pkcs12_path))


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


# --- outcomes ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignedDocument:
    """A B-LTA signed document and what the catalog and the renewal horizon need about it."""

    index: int
    pdf: bytes
    sha256: str
    signer_cert_sha256: str
    signing_time: datetime  # genTime of the signature timestamp token
    timestamp_time: datetime  # genTime of the document timestamp
    tsa_cert_sha256: str  # the TSA certificate the document timestamp relies on
    tsa_cert_not_after: datetime  # renew (new document timestamp) before this
    timestamp_hash_algorithm: str


@dataclass(frozen=True, slots=True)
class SignFailure:
    """A document left unsigned; ``retryable`` ones go to the next run unchanged."""

    index: int
    reason_code: str  # sign.timestamp_unavailable, sign.revocation_unavailable, sign.invalid_pdf…
    message: str
    retryable: bool


SignOutcome = SignedDocument | SignFailure


# --- the run -------------------------------------------------------------------------------------


@dataclass
class _RunState:
    """Validation data gathered once per run and reused by every document."""

    context: ValidationContext
    signer_path: ValidationPath
    tsa_paths: dict[str, ValidationPath]  # by TSA certificate sha256
    dummy_token: cms.ContentInfo  # sizes the timestamp placeholders
    signature_bytes: int
    timestamp_bytes: int
    fresh_until: datetime  # prepare again from here on (embedded OCSP/CRL must still be current)

    def dss_kwargs(self) -> dict[str, Any]:
        return {
            "paths": [self.signer_path, *self.tsa_paths.values()],
            "ocsps": self.context.ocsps,
            "crls": self.context.crls,
        }


class DocumentSigner:
    """Signs batches of PDFs at PAdES B-LTA. Build with :meth:`create`, once per run or worker."""

    def __init__(
        self,
        *,
        key: SigningKey,
        tsa_url: str,
        trust_roots: Sequence[x509.Certificate],
        ocsp_url_override: str | None = None,
        retry: RetryPolicy = RetryPolicy(),
        concurrency: int = 8,
        revinfo_max_age: timedelta = timedelta(hours=6),
        field_name: str = DEFAULT_FIELD_NAME,
        reason: str | None = None,
        location: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.key = key
        self.identity = key.identity
        self._roots = list(trust_roots)
        self._ocsp_url = ocsp_url_override
        self._retry = retry
        self._concurrency = max(1, concurrency)
        self._revinfo_max_age = revinfo_max_age
        self._field_name = field_name
        self._reason = reason
        self._location = location
        self._clock = clock
        self._tsa = _TsaClient(tsa_url, retry)
        self._run: _RunState | None = None

    @classmethod
    def create(
        cls, config: SignerConfig, *, key: SigningKey | None = None, **options: Any
    ) -> DocumentSigner:
        """Load the key (unless given), check the certificate and fetch validation data:
        refuses at once (:class:`SigningError`) to sign with a certificate it must not use."""
        signer = cls(
            key=key or load_signer(config),
            tsa_url=config.tsa_url,
            trust_roots=load_trust_roots(config.trust_roots),
            ocsp_url_override=config.ocsp_url_override,
            **options,
        )
        signer.prepare()
        return signer

    @property
    def timestamp_requests(self) -> int:
        """Requests sent to the TSA so far (retries included)."""
        return self._tsa.requests

    def prepare(self) -> None:
        """Check the signing certificate and fetch validation data now (done once per run)."""
        asyncio.run(self._closing(self._ensure_run(force=True)))

    def sign_batch(self, pdfs: Sequence[bytes]) -> list[SignOutcome]:
        """Sign each PDF; outcomes in input order, failures per document.

        Raises :class:`SigningError` only when the whole run must stop: the signing certificate
        is refused, or stale validation data cannot be fetched again."""
        return asyncio.run(self._closing(self._sign_all(pdfs)))

    async def async_sign_batch(self, pdfs: Sequence[bytes]) -> list[SignOutcome]:
        """:meth:`sign_batch` for a caller already inside an event loop."""
        return await self._closing(self._sign_all(pdfs))

    async def _closing(self, work: Awaitable[T]) -> T:
        # HTTP sessions belong to the event loop that opened them: close them in it.
        try:
            return await work
        finally:
            await self._tsa.aclose()
            if self._run is not None:
                await _aclose(self._run.context)

    async def _sign_all(self, pdfs: Sequence[bytes]) -> list[SignOutcome]:
        self._check_validity_period()
        self._tsa.reset_breaker()
        gate, refresh = asyncio.Semaphore(self._concurrency), asyncio.Lock()

        async def one(index: int, pdf: bytes) -> SignOutcome:
            async with gate:
                async with refresh:  # one refresh when the validation data goes stale
                    run = await self._ensure_run(force=False)
                return await self._sign_one(index, pdf, run)

        return list(await asyncio.gather(*(one(i, pdf) for i, pdf in enumerate(pdfs))))

    # -- once per run -------------------------------------------------------------------------

    async def _ensure_run(self, *, force: bool) -> _RunState:
        run = self._run
        if force or run is None or self._clock() >= run.fresh_until:
            if run is not None:
                await _aclose(run.context)
            self._run = None
            self._run = run = await self._prepare_run()
        return run

    async def _prepare_run(self) -> _RunState:
        self._check_validity_period()
        delays = self._retry.delays()
        while True:
            context = self._new_context()
            try:
                return await self._prepare_with(context)
            except _TransientError as e:
                await _aclose(context)
                if not delays:
                    raise e.final from e.__cause__
                await asyncio.sleep(delays.pop(0))
            except BaseException:
                await _aclose(context)
                raise

    def _check_validity_period(self) -> None:
        # Checked against our clock before any network traffic, so the reason is unambiguous.
        me, now = self.identity, self._clock()
        if now < me.not_before:
            raise CertificateRefusedError(
                me.subject_cn, "not_yet_valid", f"it is not valid before {me.not_before:%Y-%m-%d}"
            )
        if now > me.not_after:
            raise CertificateRefusedError(
                me.subject_cn, "expired", f"it expired on {me.not_after:%Y-%m-%d}"
            )

    def _new_context(self) -> ValidationContext:
        # A fresh context per attempt: pyHanko's fetchers also remember failures.
        timeout = self._retry.request_timeout_s
        backend = AIOHttpFetcherBackend(per_request_timeout=timeout)
        if self._ocsp_url is not None:
            backend = _PinnedOcspBackend(self._ocsp_url, timeout)
        return ValidationContext(
            trust_roots=self._roots,
            other_certs=self.key.chain,
            allow_fetching=True,
            revocation_mode="hard-fail",
            fetcher_backend=OwnedFetcherBackend(backend),
        )

    async def _prepare_with(self, context: ValidationContext) -> _RunState:
        signer_path = await _validate_cert(
            self.key.certificate, self.key.chain, context, key_usage=SIGNER_KEY_USAGE
        )
        try:
            dummy = await self._tsa.request(_dummy_digest(), MD_ALGORITHM)
        except OSError as e:
            raise _TransientError(self._tsa.unavailable(e)) from e
        tsa_cert, tsa_others = _token_certs(dummy)
        tsa_path = await _validate_cert(tsa_cert, tsa_others, context, time_stamping=True)
        signature_bytes = await self._estimate_signature_size(dummy)
        return _RunState(
            context=context,
            signer_path=signer_path,
            tsa_paths={_sha256(tsa_cert): tsa_path},
            dummy_token=dummy,
            signature_bytes=signature_bytes,
            timestamp_bytes=_placeholder_size(len(dummy.dump())),
            fresh_until=self._fresh_until(context),
        )

    def _fresh_until(self, context: ValidationContext) -> datetime:
        # OCSP responses and CRLs must still be current when a signature is timestamped, or
        # validators judge them stale. Development OCSP responses last 10 minutes; production
        # ones hours to days; revinfo_max_age caps how long a run trusts them anyway.
        ends = [self._clock() + self._revinfo_max_age]
        for response in context.ocsps:
            for single in response.basic_ocsp_response["tbs_response_data"]["responses"]:
                ends.append(single["next_update"].native or ends[0])
        ends += [c["tbs_cert_list"]["next_update"].native or ends[0] for c in context.crls]
        return min(ends) - FRESHNESS_MARGIN

    async def _estimate_signature_size(self, dummy: cms.ContentInfo) -> int:
        # Once per run, instead of pyHanko's dry-run signature per document.
        stamper = _DocumentTimeStamper(self._tsa, dummy)
        attrs = PdfCMSSignedAttributes(signing_time=self._clock())
        cms_object = await self.key.pyhanko_signer().async_sign(
            bytes(32),
            MD_ALGORITHM,
            use_pades=True,
            dry_run=True,
            timestamper=stamper,
            signed_attr_settings=attrs,
        )
        return _placeholder_size(len(cms_object.dump()))

    # -- per document --------------------------------------------------------------------------

    async def _sign_one(self, index: int, pdf: bytes, run: _RunState) -> SignOutcome:
        if self._clock() > self.identity.not_after:
            message = f"the signing certificate expired on {self.identity.not_after:%Y-%m-%d}"
            return SignFailure(index, "sign.certificate_expired", message, retryable=True)
        stamper = _DocumentTimeStamper(self._tsa, run.dummy_token)
        try:
            signed = await self._sign_document(pdf, run, stamper)
        except Exception as e:  # noqa: BLE001 - one bad document must not stop the batch
            return _failure(index, e)
        sig_token, doc_token = stamper.tokens
        tsa_cert, _ = _token_certs(doc_token)
        return SignedDocument(
            index=index,
            pdf=signed,
            sha256=hashlib.sha256(signed).hexdigest(),
            signer_cert_sha256=self.identity.fingerprint_sha256,
            signing_time=_tst_info(sig_token)["gen_time"].native,
            timestamp_time=_tst_info(doc_token)["gen_time"].native,
            tsa_cert_sha256=_sha256(tsa_cert),
            tsa_cert_not_after=tsa_cert["tbs_certificate"]["validity"]["not_after"].native,
            timestamp_hash_algorithm=MD_ALGORITHM,
        )

    async def _sign_document(
        self, pdf: bytes, run: _RunState, stamper: _DocumentTimeStamper
    ) -> bytes:
        # Revision 1: the signature (with its signature timestamp), invisible, no appearance.
        meta = PdfSignatureMetadata(
            field_name=self._field_name,
            md_algorithm=MD_ALGORITHM,
            subfilter=SigSeedSubFilter.PADES,
            reason=self._reason,
            location=self._location,
        )
        field_spec = SigFieldSpec(sig_field_name=self._field_name)
        pdf_signer = PdfSigner(
            meta, self.key.pyhanko_signer(), timestamper=stamper, new_field_spec=field_spec
        )
        session = pdf_signer.init_signing_session(IncrementalPdfFileWriter(io.BytesIO(pdf)))
        tbs = session.prepare_tbs_document(None, bytes_reserved=run.signature_bytes)
        prepared, output = tbs.digest_tbs_document()
        attrs = PdfCMSSignedAttributes(signing_time=session.system_time)
        await tbs.perform_signature(prepared.document_digest, attrs)
        await self._adopt_tsa(stamper.tokens[-1], run)
        # Revision 2: validation data (DSS) and the document timestamp over it.
        writer = IncrementalPdfFileWriter(output)
        DocumentSecurityStore.supply_dss_in_writer(writer, None, **run.dss_kwargs())
        await PdfTimeStamper(stamper, field_name=DOCUMENT_TIMESTAMP_FIELD).async_timestamp_pdf(
            writer, MD_ALGORITHM, bytes_reserved=run.timestamp_bytes, in_place=True
        )
        if await self._adopt_tsa(stamper.tokens[-1], run):
            # A TSA certificate first seen on the document timestamp: its validation data
            # goes in a DSS update of its own (rare: TSAs rarely switch certificates mid-run).
            DocumentSecurityStore.add_dss(output, None, **run.dss_kwargs())
        assert isinstance(output, io.BytesIO)  # digest_tbs_document's default output
        return output.getvalue()

    async def _adopt_tsa(self, token: cms.ContentInfo, run: _RunState) -> bool:
        """Validate a TSA certificate seen for the first time; True if it was new."""
        cert, others = _token_certs(token)
        if _sha256(cert) in run.tsa_paths:
            return False
        path = await _validate_cert(cert, others, run.context, time_stamping=True)
        run.tsa_paths[_sha256(cert)] = path
        return True


def _failure(index: int, error: Exception) -> SignFailure:
    """What a document-level error means for the caller: retry later, or look at it."""
    if isinstance(error, _TransientError):
        error = error.final
    if isinstance(error, RevocationUnavailableError):
        return SignFailure(index, "sign.revocation_unavailable", str(error), retryable=True)
    if isinstance(error, TrustServiceUnavailableError):
        return SignFailure(index, "sign.timestamp_unavailable", str(error), retryable=True)
    if isinstance(error, CertificateRefusedError):  # a TSA certificate first seen mid-run
        return SignFailure(index, "sign.tsa_refused", str(error), retryable=True)
    if isinstance(error, PdfError | PyHankoSigningError):
        message = f"pyHanko cannot sign this PDF ({type(error).__name__}: {error})"
        return SignFailure(index, "sign.invalid_pdf", message, retryable=False)
    message = f"signing raised {type(error).__name__}: {error}"
    return SignFailure(index, "sign.error", message[:300], retryable=False)


class _TransientError(Exception):
    """A trust service failed in a way a retry may fix; ``final`` is what to raise after the
    last attempt."""

    def __init__(self, final: TrustServiceUnavailableError) -> None:
        super().__init__(str(final))
        self.final = final


class _TsaClient:
    """The run's TSA client: one HTTP session per batch, and bounded retries.

    Requests run concurrently while the TSA answers. After a failure, documents retry one at a
    time (the others wait for the verdict); once one has used up its retries the TSA counts as
    down for the rest of the batch, so a batch does not wait out the backoff per document."""

    def __init__(self, url: str, retry: RetryPolicy) -> None:
        self.url = url
        self._retry = retry
        self._session = LazySession()  # type: ignore[no-untyped-call]
        self._http = HTTPTimeStamper(url, timeout=retry.request_timeout_s, session=self._session)
        self._down = False
        self._recovery = asyncio.Lock()
        self.requests = 0

    def is_down(self) -> bool:
        return self._down

    def reset_breaker(self) -> None:
        self._down = False
        self._recovery = asyncio.Lock()  # a lock belongs to one event loop, a batch has its own

    async def aclose(self) -> None:
        await self._session.close()  # type: ignore[no-untyped-call]

    def unavailable(self, cause: BaseException) -> TimestampUnavailableError:
        return TimestampUnavailableError(
            f"the TSA at {self.url} did not grant a timestamp after {self._retry.attempts} "
            f"attempt(s) ({type(cause).__name__}: {cause}); sign these documents in a later run "
            "or fix EMR_ARCHIVE_SIGNER__TSA_URL"
        )

    async def request(self, digest: bytes, md_algorithm: str) -> cms.ContentInfo:
        """One request, no retry (the run preparation retries as a whole)."""
        self.requests += 1
        token: cms.ContentInfo = await self._http.async_timestamp(digest, md_algorithm)
        return token

    async def timestamp(self, digest: bytes, md_algorithm: str) -> cms.ContentInfo:
        # OSError covers pyHanko's TimestampRequestError, aiohttp's errors and timeouts.
        if self._down:
            raise TimestampUnavailableError(f"the TSA at {self.url} is down for this batch")
        try:
            return await self.request(digest, md_algorithm)
        except OSError as e:
            error = e
        async with self._recovery:
            for delay in self._retry.delays():
                if self.is_down():  # another document used up the retries meanwhile
                    break
                await asyncio.sleep(delay)
                try:
                    return await self.request(digest, md_algorithm)
                except OSError as e:
                    error = e
            self._down = True
            raise self.unavailable(error) from error


class _DocumentTimeStamper(TimeStamper):
    """pyHanko's view of the run's TSA client for one document: keeps the tokens it obtains
    (signature timestamp, then document timestamp) and sizes placeholders from the run's
    dummy token instead of asking the TSA again."""

    def __init__(self, client: _TsaClient, dummy: cms.ContentInfo) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._client = client
        self._dummy = dummy
        self.tokens: list[cms.ContentInfo] = []

    async def async_dummy_response(self, md_algorithm: str) -> cms.ContentInfo:
        return self._dummy

    async def async_timestamp(self, message_digest: bytes, md_algorithm: str) -> cms.ContentInfo:
        token = await self._client.timestamp(message_digest, md_algorithm)
        imprint = _tst_info(token)["message_imprint"]["hashed_message"].native
        if imprint != message_digest:  # pyHanko checks status and nonce, not the imprint
            raise TimestampUnavailableError(
                f"the TSA at {self._client.url} timestamped a different digest than requested"
            )
        self.tokens.append(token)
        return token


class _PinnedOcspFetcher(AIOHttpOCSPFetcher):
    """Sends every OCSP request to one responder (EMR_ARCHIVE_SIGNER__OCSP_URL_OVERRIDE).

    Overrides a private method of pyHanko 0.38's fetcher (pinned in pyproject.toml)."""

    def __init__(self, url: str, session: Any, timeout: float) -> None:
        super().__init__(session, per_request_timeout=timeout)
        self._url = url

    async def _fetch(self, cert: x509.Certificate, authority: Any) -> ocsp.OCSPResponse:
        request = format_ocsp_request(
            cert, authority, certid_hash_algo=self.certid_hash_algo, request_nonces=True
        )
        return await _grab_ocsp(
            request,
            self._url,
            user_agent=self.user_agent,
            session=self.get_session(),
            timeout=self.per_request_timeout,
        )


class _PinnedOcspBackend(AIOHttpFetcherBackend):
    def __init__(self, url: str, timeout: float) -> None:
        super().__init__(per_request_timeout=timeout)
        self._url = url

    def get_fetchers(self) -> Fetchers:
        fetchers = super().get_fetchers()
        pinned = _PinnedOcspFetcher(self._url, self.session, self.per_request_timeout)
        return Fetchers(pinned, fetchers.crl_fetcher, fetchers.cert_fetcher)


async def _validate_cert(
    cert: x509.Certificate,
    others: Sequence[x509.Certificate],
    context: ValidationContext,
    *,
    key_usage: frozenset[str] = frozenset(),
    time_stamping: bool = False,
) -> ValidationPath:
    """Path, validity, revocation and usage of ``cert`` now; refusals name the certificate."""
    validator = CertificateValidator(cert, intermediate_certs=others, validation_context=context)
    extended = {"time_stamping"} if time_stamping else None
    cn = _common_name(cert)

    def refused(reason: str, detail: str) -> CertificateRefusedError:
        return CertificateRefusedError(cn, reason, detail, tsa=time_stamping)

    try:
        path: ValidationPath = await validator.async_validate_usage(  # type: ignore[no-untyped-call]
            set(key_usage), extended_key_usage=extended
        )
        return path
    except InsufficientRevinfoError as e:
        raise _TransientError(
            RevocationUnavailableError(
                f"no OCSP response or CRL could be obtained for the certificate {cn!r} "
                f"({e.failure_msg}); sign in a later run or check the responder's reachability"
            )
        ) from e
    except RevokedError as e:
        detail = f"it was revoked on {e.revocation_dt:%Y-%m-%d} ({e.reason.human_friendly})"
        raise refused("revoked", detail) from e
    except ExpiredError as e:
        detail = f"it expired on {e.expired_dt:%Y-%m-%d}"
        raise refused("expired", detail) from e
    except NotYetValidError as e:
        detail = f"it is not valid before {e.valid_from:%Y-%m-%d}"
        raise refused("not_yet_valid", detail) from e
    except PathBuildingError as e:
        detail = "it does not chain to a configured trust root (EMR_ARCHIVE_SIGNER__TRUST_ROOTS)"
        raise refused("untrusted", detail) from e
    except (PathValidationError, InvalidCertificateError) as e:
        raise refused("invalid", f"it failed validation: {e}") from e


def _token_certs(token: cms.ContentInfo) -> tuple[x509.Certificate, list[x509.Certificate]]:
    """The TSA's certificate in a timestamp token, and the other certificates it carries."""
    certs = extract_certificate_info(token["content"])
    return certs.signer_cert, list(certs.other_certs)


def _tst_info(token: cms.ContentInfo) -> tsp.TSTInfo:
    info: tsp.TSTInfo = token["content"]["encap_content_info"]["content"].parsed
    return info


async def _aclose(context: ValidationContext) -> None:
    await context.aclose()  # type: ignore[no-untyped-call]


def _placeholder_size(der_length: int) -> int:
    # Hex doubles the DER; pyHanko's own margin (+50%) absorbs TSA tokens of varying length.
    hex_length = 2 * der_length
    return hex_length + 2 * (hex_length // 4)


def _dummy_digest() -> bytes:
    return hashlib.sha256(b"emr-archive: sizing the timestamp placeholder").digest()


def _sha256(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.dump()).hexdigest()


def _common_name(cert: x509.Certificate) -> str:
    name = cert.subject.native.get("common_name")
    return name if isinstance(name, str) else str(cert.subject.human_friendly)


# --- process-pool workers ------------------------------------------------------------------------

_worker_signer: DocumentSigner | None = None


def init_worker(config: SignerConfig, options: Mapping[str, Any] | None = None) -> None:
    """``ProcessPoolExecutor(initializer=init_worker, initargs=(config,))``: one key load and one
    certificate check per worker process."""
    global _worker_signer
    _worker_signer = DocumentSigner.create(config, **dict(options or {}))


def sign_in_worker(pdfs: Sequence[bytes]) -> list[SignOutcome]:
    """Sign a batch in a worker set up by :func:`init_worker` (bytes in, dataclasses out)."""
    if _worker_signer is None:
        raise SigningError("sign_in_worker needs init_worker as the pool's initializer")
    return _worker_signer.sign_batch(pdfs)

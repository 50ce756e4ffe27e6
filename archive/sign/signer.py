"""The signing stage: PAdES B-LTA signatures over rendered PDF/A-3b documents.

Each document gets, as incremental updates that leave the PDF/A original byte-for-byte intact:

1. an invisible approval signature (``/ETSI.CAdES.detached``, RSA/ECDSA with SHA-256) carrying a
   signature timestamp from the TSA (B-T);
2. a DSS with the certificates, OCSP responses and CRLs of the signer and TSA chains (B-LT), in
   the same revision as a document timestamp over everything before it (B-LTA).

Why the stage does not call ``pyhanko.sign.signers.async_sign_pdf`` per document: that costs
~160-170 ms CPU per document here; this stage ~15 ms with the same output structure
(``python -m bench.bench_sign`` prints both side by side). Where the time went:

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
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from asn1crypto import x509
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign.fields import SigFieldSpec, SigSeedSubFilter
from pyhanko.sign.signers import PdfSignatureMetadata, PdfSigner, PdfTimeStamper
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes
from pyhanko.sign.validation import DocumentSecurityStore

from archive.core.errors import CertificateRefusedError
from archive.sign.certificates import TSA_ROOTS_SETTING, cert_sha256
from archive.sign.config import MD_ALGORITHM, RetryPolicy, SignerConfig, load_trust_roots
from archive.sign.identity import SigningKey
from archive.sign.key import load_signer
from archive.sign.outcomes import SignedDocument, SignFailure, SignOutcome, failure_from
from archive.sign.revocation import aclose_context
from archive.sign.run import RunPreparer, RunState
from archive.sign.tsa import DocumentTimeStamper, TsaClient, token_certs, tst_info

__all__ = ["DEFAULT_FIELD_NAME", "DEFAULT_RETRY", "DOCUMENT_TIMESTAMP_FIELD", "DocumentSigner"]

DEFAULT_FIELD_NAME = "HospitalSignature"
DOCUMENT_TIMESTAMP_FIELD = "DocumentTimestamp-1"
DEFAULT_RETRY = RetryPolicy()
T = TypeVar("T")


class DocumentSigner:
    """Signs batches of PDFs at PAdES B-LTA. Build with :meth:`create`, once per run or worker."""

    def __init__(
        self,
        *,
        key: SigningKey,
        tsa_url: str,
        trust_roots: Sequence[x509.Certificate],
        tsa_roots: Sequence[x509.Certificate],
        ocsp_url_override: str | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        concurrency: int = 8,
        revinfo_max_age: timedelta = timedelta(hours=6),
        field_name: str = DEFAULT_FIELD_NAME,
        reason: str | None = None,
        location: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.key = key
        self.identity = key.identity
        # A remote signer authorises a batch of signatures at once: let a whole batch reach it.
        batch = getattr(key, "signatures_per_authorisation", 1)
        self._concurrency = max(1, concurrency, batch)
        self._field_name = field_name
        self._reason = reason
        self._location = location
        self._clock = clock
        self._tsa = TsaClient(tsa_url, retry)
        self._preparer = RunPreparer(
            key=key,
            tsa=self._tsa,
            trust_roots=list(trust_roots),
            tsa_roots=list(tsa_roots),
            ocsp_url_override=ocsp_url_override,
            retry=retry,
            revinfo_max_age=revinfo_max_age,
            clock=clock,
        )
        self._run: RunState | None = None

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
            tsa_roots=load_trust_roots(config.tsa_trust_roots, setting=TSA_ROOTS_SETTING),
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
                await aclose_context(self._run.context)

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

    async def _ensure_run(self, *, force: bool) -> RunState:
        run = self._run
        if force or run is None or self._clock() >= run.fresh_until:
            if run is not None:
                await aclose_context(run.context)
            self._run = None
            self._run = run = await self._prepare_run()
        return run

    async def _prepare_run(self) -> RunState:
        self._check_validity_period()
        return await self._preparer.prepare()

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

    # -- per document --------------------------------------------------------------------------

    async def _sign_one(self, index: int, pdf: bytes, run: RunState) -> SignOutcome:
        if self._clock() > self.identity.not_after:
            message = f"the signing certificate expired on {self.identity.not_after:%Y-%m-%d}"
            return SignFailure(index, "sign.certificate_expired", message, retryable=True)
        stamper = DocumentTimeStamper(self._tsa, run.dummy_token)
        try:
            signed = await self._sign_document(pdf, run, stamper)
        except Exception as e:  # noqa: BLE001 - one bad document must not stop the batch
            return failure_from(index, e)
        sig_token, doc_token = stamper.tokens
        tsa_cert, _ = token_certs(doc_token)
        return SignedDocument(
            index=index,
            pdf=signed,
            sha256=hashlib.sha256(signed).hexdigest(),
            signer_cert_sha256=self.identity.fingerprint_sha256,
            signing_time=tst_info(sig_token)["gen_time"].native,
            timestamp_time=tst_info(doc_token)["gen_time"].native,
            tsa_cert_sha256=cert_sha256(tsa_cert),
            tsa_cert_not_after=tsa_cert["tbs_certificate"]["validity"]["not_after"].native,
            timestamp_hash_algorithm=MD_ALGORITHM,
        )

    async def _sign_document(
        self, pdf: bytes, run: RunState, stamper: DocumentTimeStamper
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
        await run.adopt_tsa(stamper.tokens[-1])
        # Revision 2: validation data (DSS) and the document timestamp over it.
        writer = IncrementalPdfFileWriter(output)
        DocumentSecurityStore.supply_dss_in_writer(writer, None, **run.dss_kwargs())
        await PdfTimeStamper(stamper, field_name=DOCUMENT_TIMESTAMP_FIELD).async_timestamp_pdf(
            writer, MD_ALGORITHM, bytes_reserved=run.timestamp_bytes, in_place=True
        )
        if await run.adopt_tsa(stamper.tokens[-1]):
            # A TSA certificate first seen on the document timestamp: its validation data
            # goes in a DSS update of its own (rare: TSAs rarely switch certificates mid-run).
            DocumentSecurityStore.add_dss(output, None, **run.dss_kwargs())
        assert isinstance(output, io.BytesIO)  # digest_tbs_document's default output
        return output.getvalue()

"""What a run gathers once and every document reuses: validated paths, OCSP responses and CRLs,
and the sizes of the signature and timestamp placeholders.

The key, the TSA client and the trust roots (the signer's, and the TSA's) go in; a
:class:`RunState` comes out, or the error that stops the run (a refused certificate; trust
services still down after the retries). The OCSP responses and CRLs must still be current when a
document is timestamped, so the state says until when it may be used (``fresh_until``) and the
signer gathers a new one from then on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from asn1crypto import cms, x509
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.path import ValidationPath

from archive.sign.certificates import SIGNER_KEY_USAGE, TransientError, cert_sha256, validate_cert
from archive.sign.config import MD_ALGORITHM, RetryPolicy
from archive.sign.identity import SigningKey
from archive.sign.revocation import aclose_context, online_context
from archive.sign.tsa import DocumentTimeStamper, TsaClient, dummy_digest, token_certs

__all__ = ["FRESHNESS_MARGIN", "RunPreparer", "RunState", "placeholder_size"]

FRESHNESS_MARGIN = timedelta(minutes=1)  # a document takes < 1 s; TSA retries a few more


@dataclass
class RunState:
    """Validation data gathered once per run and reused by every document."""

    context: ValidationContext
    signer_path: ValidationPath
    tsa_paths: dict[str, ValidationPath]  # by TSA certificate sha256
    dummy_token: cms.ContentInfo  # sizes the timestamp placeholders
    signature_bytes: int
    timestamp_bytes: int
    fresh_until: datetime  # prepare again from here on (embedded OCSP/CRL must still be current)
    tsa_roots: Sequence[x509.Certificate]  # what a TSA certificate first seen mid-run must chain to

    def dss_kwargs(self) -> dict[str, Any]:
        return {
            "paths": [self.signer_path, *self.tsa_paths.values()],
            "ocsps": self.context.ocsps,
            "crls": self.context.crls,
        }

    async def adopt_tsa(self, token: cms.ContentInfo) -> bool:
        """Validate a TSA certificate seen for the first time; True if it was new."""
        cert, others = token_certs(token)
        if cert_sha256(cert) in self.tsa_paths:
            return False
        path = await validate_cert(
            cert, others, self.context, anchors=self.tsa_roots, time_stamping=True
        )
        self.tsa_paths[cert_sha256(cert)] = path
        return True


@dataclass(frozen=True, slots=True, kw_only=True)
class RunPreparer:
    """Gathers a :class:`RunState`, retrying as a whole while a trust service is down."""

    key: SigningKey
    tsa: TsaClient
    trust_roots: Sequence[x509.Certificate]  # the signer's certificate must chain to one
    tsa_roots: Sequence[x509.Certificate]  # every TSA certificate must chain to one
    ocsp_url_override: str | None
    retry: RetryPolicy
    revinfo_max_age: timedelta
    clock: Callable[[], datetime]

    async def prepare(self) -> RunState:
        delays = self.retry.delays()
        while True:
            context = self._new_context()
            try:
                return await self._prepare_with(context)
            except TransientError as e:
                await aclose_context(context)
                if not delays:
                    raise e.final from e.__cause__
                await asyncio.sleep(delays.pop(0))
            except BaseException:
                await aclose_context(context)
                raise

    def _new_context(self) -> ValidationContext:
        # A fresh context per attempt: pyHanko's fetchers also remember failures.
        # Both lists: the context fetches revocation data for the signer and the TSA alike;
        # validate_cert decides which of them a path must end in.
        return online_context(
            trust_roots=[*self.trust_roots, *self.tsa_roots],
            other_certs=self.key.chain,
            ocsp_url_override=self.ocsp_url_override,
            timeout=self.retry.request_timeout_s,
        )

    async def _prepare_with(self, context: ValidationContext) -> RunState:
        signer_path = await validate_cert(
            self.key.certificate,
            self.key.chain,
            context,
            anchors=self.trust_roots,
            key_usage=SIGNER_KEY_USAGE,
        )
        try:
            dummy = await self.tsa.request(dummy_digest(), MD_ALGORITHM)
        except OSError as e:
            raise TransientError(self.tsa.unavailable(e)) from e
        tsa_cert, tsa_others = token_certs(dummy)
        tsa_path = await validate_cert(
            tsa_cert, tsa_others, context, anchors=self.tsa_roots, time_stamping=True
        )
        signature_bytes = await self._estimate_signature_size(dummy)
        return RunState(
            context=context,
            signer_path=signer_path,
            tsa_paths={cert_sha256(tsa_cert): tsa_path},
            dummy_token=dummy,
            signature_bytes=signature_bytes,
            timestamp_bytes=placeholder_size(len(dummy.dump())),
            fresh_until=self._fresh_until(context),
            tsa_roots=self.tsa_roots,
        )

    def _fresh_until(self, context: ValidationContext) -> datetime:
        # OCSP responses and CRLs must still be current when a signature is timestamped, or
        # validators judge them stale. Development OCSP responses last 10 minutes; production
        # ones hours to days; revinfo_max_age caps how long a run trusts them anyway.
        ends = [self.clock() + self.revinfo_max_age]
        for response in context.ocsps:
            for single in response.basic_ocsp_response["tbs_response_data"]["responses"]:
                ends.append(single["next_update"].native or ends[0])
        ends += [c["tbs_cert_list"]["next_update"].native or ends[0] for c in context.crls]
        return min(ends) - FRESHNESS_MARGIN

    async def _estimate_signature_size(self, dummy: cms.ContentInfo) -> int:
        # Once per run, instead of pyHanko's dry-run signature per document.
        stamper = DocumentTimeStamper(self.tsa, dummy)
        attrs = PdfCMSSignedAttributes(signing_time=self.clock())
        cms_object = await self.key.pyhanko_signer().async_sign(
            bytes(32),
            MD_ALGORITHM,
            use_pades=True,
            dry_run=True,
            timestamper=stamper,
            signed_attr_settings=attrs,
        )
        return placeholder_size(len(cms_object.dump()))


def placeholder_size(der_length: int) -> int:
    # Hex doubles the DER; pyHanko's own margin (+50%) absorbs TSA tokens of varying length.
    hex_length = 2 * der_length
    return hex_length + 2 * (hex_length // 4)

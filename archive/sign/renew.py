"""One more document timestamp on a signed PDF: PAdES B-LTA's archive timestamp chain, extended.

A signed PDF goes in (bytes); the same PDF with an incremental update comes out: the validation
data (certificates, OCSP responses, CRLs) of the newest document timestamp's TSA, fetched now,
then a new document timestamp over everything, then the new TSA's validation data. The result
validates alone, offline, until the new TSA's certificate expires, in any PAdES validator: what
an inspector's exported copy needs when the archive's own proof lives in its evidence records.

This is pyHanko's :meth:`PdfTimeStamper.async_update_archival_timestamp_chain` (it validates the
previous timestamp against the TSA trust roots before it builds on it, and fails hard when
revocation data cannot be had). Bytes in, bytes out: the archived object is never touched; the
caller decides where the renewed copy goes.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.signers import PdfTimeStamper
from pyhanko.sign.timestamps import HTTPTimeStamper

from archive.core.errors import SigningError, TimestampUnavailableError
from archive.sign.config import RetryPolicy
from archive.sign.newest_timestamp import newest_document_timestamp
from archive.sign.revocation import aclose_context, online_context

__all__ = ["DocumentRenewer", "RenewedCopy"]

FIELD_PREFIX = "DocumentTimestamp-"  # the signer writes DocumentTimestamp-1


@dataclass(frozen=True, slots=True)
class RenewedCopy:
    pdf: bytes
    field_name: str  # the new document timestamp's field
    timestamp_time: datetime
    tsa_url: str
    tsa_cert_sha256: str
    tsa_cert_not_after: datetime  # the copy validates alone until about then
    document_timestamps: int  # in the renewed copy, the new one included


class DocumentRenewer:
    """Renewals for one export: one event loop, one TSA client and one validation context for
    every PDF, so the TSA's certificate path is validated and its OCSP responses and CRLs are
    fetched once per export, not per document (and the TSA is asked once to size the
    placeholder). Use as a context manager; :meth:`renew` one PDF at a time."""

    def __init__(
        self,
        *,
        tsa_url: str,
        tsa_roots: Sequence[x509.Certificate],
        ocsp_url_override: str | None = None,
        timeout: float = RetryPolicy().request_timeout_s,
    ) -> None:
        self.tsa_url = tsa_url
        self._runner = asyncio.Runner()
        self._stamper = HTTPTimeStamper(tsa_url, timeout=timeout)
        self._context = online_context(
            trust_roots=tsa_roots,
            other_certs=[],
            ocsp_url_override=ocsp_url_override,
            timeout=timeout,
        )

    def __enter__(self) -> DocumentRenewer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._runner.run(aclose_context(self._context))
        finally:
            self._runner.close()

    def renew(self, pdf: bytes) -> RenewedCopy:
        """``pdf`` with one more document timestamp; raises :class:`TimestampUnavailableError`
        when the TSA or the revocation servers cannot be had and :class:`SigningError` when the
        newest timestamp already in the PDF does not validate. One attempt, no retries: an
        export is interactive, and fails loudly for its user to retry."""
        before = _count(pdf)
        field = f"{FIELD_PREFIX}{before + 1}"
        try:
            renewed = self._runner.run(self._renew(pdf, field))
        except OSError as e:  # pyHanko's TimestampRequestError, aiohttp's errors and timeouts
            raise TimestampUnavailableError(
                f"the TSA at {self.tsa_url} or a revocation server could not be reached "
                f"({type(e).__name__}); nothing was renewed, try again later"
            ) from e
        except Exception as e:  # pyHanko raises many types when validation fails
            raise SigningError(
                f"the exported copy could not be renewed ({type(e).__name__}: {e}); its newest "
                "timestamp may not validate: run `emr-archive verify` on the record"
            ) from e
        return self._checked(pdf, renewed, field, before)

    async def _renew(self, pdf: bytes, field: str) -> bytes:
        out = io.BytesIO()
        await PdfTimeStamper(self._stamper, field).async_update_archival_timestamp_chain(
            PdfFileReader(io.BytesIO(pdf), strict=True), self._context, in_place=False, output=out
        )
        return out.getvalue()

    def _checked(self, pdf: bytes, renewed: bytes, field: str, before: int) -> RenewedCopy:
        if not renewed.startswith(pdf):  # an incremental update, or the original was rewritten
            raise SigningError("the renewed copy does not keep the original's bytes as they were")
        newest = newest_document_timestamp(renewed)
        if newest is None or newest.field_name != field or _count(renewed) != before + 1:
            raise SigningError("the renewed copy does not end with the new document timestamp")
        return RenewedCopy(
            pdf=renewed,
            field_name=field,
            timestamp_time=newest.time,
            tsa_url=self.tsa_url,
            tsa_cert_sha256=newest.tsa_cert_sha256,
            tsa_cert_not_after=newest.tsa_cert_not_after,
            document_timestamps=before + 1,
        )


def _count(pdf: bytes) -> int:
    try:
        return len(PdfFileReader(io.BytesIO(pdf), strict=True).embedded_timestamp_signatures)
    except Exception as e:  # pyHanko raises many types on a damaged file
        raise SigningError(f"not a readable signed PDF ({type(e).__name__})") from e

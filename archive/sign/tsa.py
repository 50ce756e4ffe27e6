"""The run's RFC 3161 client: one HTTP session per batch, bounded retries, and a breaker.

A digest goes in, a timestamp token comes out, or :class:`TimestampUnavailableError` once the TSA
has had its retries: then the TSA counts as down for the rest of the batch, so a batch of a
thousand documents fails in seconds instead of waiting out the backoff a thousand times. The
per-document :class:`DocumentTimeStamper` is how pyHanko sees this client.
"""

from __future__ import annotations

import asyncio
import hashlib

from asn1crypto import cms, tsp, x509
from pyhanko.sign.general import extract_certificate_info
from pyhanko.sign.timestamps import HTTPTimeStamper, TimeStamper
from pyhanko_certvalidator.fetchers.aiohttp_fetchers.util import LazySession

from archive.core.errors import TimestampUnavailableError
from archive.sign.config import RetryPolicy

__all__ = ["DocumentTimeStamper", "TsaClient", "dummy_digest", "token_certs", "tst_info"]


class TsaClient:
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


class DocumentTimeStamper(TimeStamper):
    """pyHanko's view of the run's TSA client for one document: keeps the tokens it obtains
    (signature timestamp, then document timestamp) and sizes placeholders from the run's
    dummy token instead of asking the TSA again."""

    def __init__(self, client: TsaClient, dummy: cms.ContentInfo) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._client = client
        self._dummy = dummy
        self.tokens: list[cms.ContentInfo] = []

    async def async_dummy_response(self, md_algorithm: str) -> cms.ContentInfo:
        return self._dummy

    async def async_timestamp(self, message_digest: bytes, md_algorithm: str) -> cms.ContentInfo:
        token = await self._client.timestamp(message_digest, md_algorithm)
        imprint = tst_info(token)["message_imprint"]["hashed_message"].native
        if imprint != message_digest:  # pyHanko checks status and nonce, not the imprint
            raise TimestampUnavailableError(
                f"the TSA at {self._client.url} timestamped a different digest than requested"
            )
        self.tokens.append(token)
        return token


def token_certs(token: cms.ContentInfo) -> tuple[x509.Certificate, list[x509.Certificate]]:
    """The TSA's certificate in a timestamp token, and the other certificates it carries."""
    certs = extract_certificate_info(token["content"])
    return certs.signer_cert, list(certs.other_certs)


def tst_info(token: cms.ContentInfo) -> tsp.TSTInfo:
    info: tsp.TSTInfo = token["content"]["encap_content_info"]["content"].parsed
    return info


def dummy_digest() -> bytes:
    return hashlib.sha256(b"emr-archive: sizing the timestamp placeholder").digest()

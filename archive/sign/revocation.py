"""Where OCSP responses and CRLs come from while a run checks certificates.

Trust roots, the key's chain, an optional OCSP responder to pin and a timeout go in; a pyHanko
``ValidationContext`` that fetches online and fails hard comes out. Its OCSP responses and CRLs
end up in every document's DSS, so the documents validate offline later. Contexts hold HTTP
sessions: close each with :func:`aclose_context` in the event loop that opened it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from asn1crypto import ocsp, x509
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.fetchers import Fetchers, OwnedFetcherBackend
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend
from pyhanko_certvalidator.fetchers.aiohttp_fetchers.ocsp_client import (
    AIOHttpOCSPFetcher,
    _grab_ocsp,
)
from pyhanko_certvalidator.fetchers.common_utils import format_ocsp_request

__all__ = ["aclose_context", "online_context"]


def online_context(
    *,
    trust_roots: Sequence[x509.Certificate],
    other_certs: Sequence[x509.Certificate],
    ocsp_url_override: str | None,
    timeout: float,
) -> ValidationContext:
    """A context that fetches revocation data (from the pinned responder, if one is set)."""
    backend = AIOHttpFetcherBackend(per_request_timeout=timeout)
    if ocsp_url_override is not None:
        backend = _PinnedOcspBackend(ocsp_url_override, timeout)
    return ValidationContext(
        trust_roots=trust_roots,
        other_certs=other_certs,
        allow_fetching=True,
        revocation_mode="hard-fail",
        fetcher_backend=OwnedFetcherBackend(backend),
    )


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


async def aclose_context(context: ValidationContext) -> None:
    await context.aclose()  # type: ignore[no-untyped-call]

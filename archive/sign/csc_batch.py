"""How documents reach a CSC service in batches: pyHanko's ``CSCSigner`` with bounded waits.

pyHanko batches the hashes of concurrent signatures and sends a batch when it is full or when
asked (``commit``); a document waits on an event until its batch is answered, with no limit. An
unattended night needs every wait to end, so this module adds:

* a committer task that commits a batch once it stops growing, and that lives as long as any
  document waits for a signature: a document that arrives while a commit is in flight, then opens
  the next batch, still has someone to commit it (the committer used to end with the commit and
  leave that last batch waiting forever);
* every commit in a task of its own, bounded by ``commit_timeout_s``: a document cancelled while
  its own task commits the batch (pyHanko commits a full batch in the task of the document that
  filled it) does not cancel the commit the others wait for;
* a stall bound per document: it fails when no commit has ended for ``stall_s`` (the longest a
  healthy service takes for one batch, lingering included);
* a batch left by an earlier event loop dropped (each ``sign_batch`` runs in a loop of its own;
  an asyncio event belongs to the loop that first waited on it);
* an HTTP session per request, for the same reason.

A wait that ends without a signature fails the document as :class:`RemoteSignerUnavailableError`
(retryable): the document stays for the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

import aiohttp
from cryptography.exceptions import InvalidSignature
from pyhanko.sign.general import SigningError as PyHankoSigningError
from pyhanko.sign.signers.csc_signer import (
    CSCAuthorizationInfo,
    CSCAuthorizationManager,
    CSCCredentialInfo,
    CSCServiceSessionInfo,
    CSCSigner,
)
from pyhanko_certvalidator.sig_validate import (
    DEFAULT_SIGNATURE_VALIDATOR,
    SignatureValidationContext,
)

from archive.core.errors import RemoteSignerUnavailableError

__all__ = [
    "LINGER_S",
    "REQUEST_TIMEOUT_S",
    "BatchAuthorisation",
    "BatchingCscSigner",
    "OneShotSession",
    "cause_of",
]

REQUEST_TIMEOUT_S = 60.0  # per HTTP request to the service
LINGER_S = 0.1  # a batch that did not grow for this long is committed (~TSA round trips)
# One commit is two requests (credentials/authorize, signatures/signHash), each bounded above.
COMMIT_TIMEOUT_S = 2 * REQUEST_TIMEOUT_S + 5


class Transport(Protocol):
    """The part of an aiohttp session ``CSCSigner`` uses."""

    def post(self, url: str, **kwargs: Any) -> AbstractAsyncContextManager[Any]: ...


class OneShotSession:
    """A :class:`Transport` opening one aiohttp session per request: the key outlives the event
    loop of each batch, and a session belongs to one loop."""

    @asynccontextmanager
    async def post(self, url: str, **kwargs: Any) -> AsyncIterator[aiohttp.ClientResponse]:
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(url, **kwargs) as response,
        ):
            yield response


class BatchAuthorisation(CSCAuthorizationManager):
    """One ``credentials/authorize`` per batch, pinned to the batch's hashes."""

    def __init__(
        self, session: CSCServiceSessionInfo, info: CSCCredentialInfo, http: Transport
    ) -> None:
        super().__init__(session, info)
        self._http = http
        self.count = 0

    async def authorize_signature(self, hash_b64s: list[str]) -> CSCAuthorizationInfo:
        # Hashes are pinned whatever the SCAL: a SAD that leaks signs nothing else.
        request = self.format_csc_auth_request(
            hash_b64s=hash_b64s, description="emr-archive: one batch of records"
        )
        url = self.csc_session_info.endpoint_url("credentials/authorize")  # type: ignore[no-untyped-call]
        async with self._http.post(
            url, headers=self.auth_headers, json=request, raise_for_status=True
        ) as response:
            answer = await response.json()
        self.count += 1
        info: CSCAuthorizationInfo = self.parse_csc_auth_response(answer)
        return info


class BatchingCscSigner(CSCSigner):
    """pyHanko's CSC signer whose every wait ends, checking every signature it gets back."""

    def __init__(
        self,
        authorisation: BatchAuthorisation,
        http: Transport,
        *,
        batch_size: int,
        commit_timeout_s: float = COMMIT_TIMEOUT_S,
        stall_s: float | None = None,
    ) -> None:
        super().__init__(
            session=http,  # type: ignore[arg-type]  # duck-typed: CSCSigner only calls post()
            auth_manager=authorisation,
            sign_timeout=int(REQUEST_TIMEOUT_S),
            embed_roots=False,  # as for a local key: validators bring their own anchors
            batch_size=batch_size,
        )
        self.authorisation = authorisation
        self.commit_timeout_s = commit_timeout_s
        # A batch lingers at most once per document joining it, then its commit is bounded.
        self.stall_s = stall_s or commit_timeout_s + LINGER_S * (batch_size + 2) + 1
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reset()

    def _reset(self) -> None:
        self._current_batch = None
        self._waiting = 0  # documents between asking for a signature and getting an answer
        self._committer: asyncio.Task[None] | None = None
        self._commits: set[asyncio.Task[None]] = set()
        self._deadlines: set[asyncio.Timeout] = set()
        self._failure: BaseException | None = None  # why the last failed commit failed

    async def async_sign_raw(
        self, data: bytes, digest_algorithm: str, dry_run: bool = False
    ) -> bytes:
        if dry_run:  # sizes the placeholder; no request
            return bytes(await super().async_sign_raw(data, digest_algorithm, dry_run=True))
        self._adopt_loop()
        self._waiting += 1
        if self._committer is None or self._committer.done():
            self._committer = asyncio.get_running_loop().create_task(self._commit_batches())
        deadline = asyncio.timeout(self.stall_s)
        try:
            async with deadline:
                self._deadlines.add(deadline)
                signature = bytes(await super().async_sign_raw(data, digest_algorithm))
        except TimeoutError as e:
            raise RemoteSignerUnavailableError(
                f"the CSC service at {self._url} did not answer in time (a commit each "
                f"{self.stall_s:.0f} s at least); the documents stay for the next run"
            ) from e
        except PyHankoSigningError as e:
            cause = self._failure or e
            raise RemoteSignerUnavailableError(
                f"the CSC service at {self._url} did not sign this batch ({cause_of(cause)}); "
                "the documents stay for the next run"
            ) from cause
        finally:
            self._waiting -= 1
            self._deadlines.discard(deadline)
        self._check(signature, data, digest_algorithm)
        return signature

    def _adopt_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # What an ended loop left (a batch nobody will commit, events bound to that loop,
            # its tasks) goes: the documents that waited for it went with their loop.
            self._loop = loop
            self._reset()

    async def commit(self) -> None:
        batch = self._current_batch
        if batch is None or batch.initiated:  # its documents wait for the commit under way
            return
        batch.initiated = True  # before any await: no document joins a batch being sent
        # In a task of its own: cancelling the document whose task started the commit must not
        # cancel the commit every document of the batch waits for.
        commit = asyncio.get_running_loop().create_task(self._bounded_commit(batch))
        self._commits.add(commit)
        commit.add_done_callback(self._commit_ended)
        await asyncio.shield(commit)

    async def _bounded_commit(self, batch: Any) -> None:
        try:
            async with asyncio.timeout(self.commit_timeout_s):
                # pyHanko's commit without its checks (done above); it wakes the batch's
                # documents whatever happens, cancellation included.
                await self._do_commit(batch)
            self._failure = None
        except Exception as e:
            self._failure = e
            raise

    def _commit_ended(self, commit: asyncio.Task[None]) -> None:
        self._commits.discard(commit)
        if not commit.cancelled():
            commit.exception()  # kept in _failure; retrieved so asyncio does not log it
        # A commit ended: the service makes progress, the documents still queued wait on.
        when = asyncio.get_running_loop().time() + self.stall_s
        for deadline in self._deadlines:
            if not deadline.expired():  # an expired one is failing its document already
                deadline.reschedule(when)

    @property
    def _url(self) -> str:
        return str(self.authorisation.csc_session_info.service_url)

    async def _commit_batches(self) -> None:
        # Ends only once no document waits; a document arriving after that starts another.
        # pyHanko commits a full batch itself; this commits one that stopped growing.
        while self._waiting:
            batch = self._current_batch
            if batch is None or batch.initiated:  # none open yet, or a commit in flight
                await asyncio.sleep(LINGER_S)
                continue
            size = len(batch.b64_hashes)
            await asyncio.sleep(LINGER_S)
            quiet = batch is self._current_batch and len(batch.b64_hashes) == size
            if quiet and not batch.initiated:
                # A failure is kept in _failure; every document of the batch raises it.
                with contextlib.suppress(Exception):
                    await self.commit()

    def _check(self, signature: bytes, data: bytes, digest_algorithm: str) -> None:
        # A service that signs with another key (or returns garbage) would make records whose
        # signature fails every validation: refuse the signature here, keep the document.
        mechanism = self.get_signature_mechanism_for_digest(digest_algorithm)  # type: ignore[no-untyped-call]
        certificate = self.authorisation.credential_info.signing_cert
        try:
            DEFAULT_SIGNATURE_VALIDATOR.validate_signature(
                signature,
                data,
                certificate.public_key,
                mechanism,
                SignatureValidationContext(contextual_md_algorithm=digest_algorithm),
            )
        except (InvalidSignature, ValueError) as e:
            raise RemoteSignerUnavailableError(
                f"the CSC service at {self._url} returned a signature that does not verify "
                "with the credential's certificate; the documents stay for the next run"
            ) from e


def cause_of(error: BaseException) -> str:
    cause = error.__cause__ or error
    return f"{type(cause).__name__}: {cause}"[:200]

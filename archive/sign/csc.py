"""Remote signing over the Cloud Signature Consortium API (v1.0.4): the key stays at the service.

A :class:`~archive.sign.config.CscConfig` goes in (service URL, credential id, where the access
token is); a :class:`CscSigningKey` comes out, the same kind of value as a PKCS#12 key, so the
signing stage, the run-start certificate checks (chain, key usage, validity, revocation) and the
signer pinning treat the remote certificate exactly like a local one.

What the service is asked, per batch of documents (one ``sign_batch``): one
``credentials/authorize`` for all of their hashes (pinned to them: a leaked SAD signs nothing
else), then one ``signatures/signHash``. pyHanko's ``CSCSigner`` does the batching; this module
adds what an unattended night needs from it:

* a commit when the batch stops growing (pyHanko commits a full batch, or on demand): every
  document of a ``sign_batch`` reaches its signature in the same turn of the event loop, so one
  authorisation covers them all, up to the credential's ``multisign``;
* an HTTP session per request: the key lives for a process, each batch runs in an event loop of
  its own, and an aiohttp session belongs to one loop;
* every returned signature verified against the credential's certificate before it is used;
* a service that is down, refuses or answers nonsense fails the batch's documents as
  :class:`RemoteSignerUnavailableError` (retryable): nothing unsigned or mis-signed is returned.

Only the ``implicit`` authorisation mode is usable at night (no one types a PIN or OTP); the
credential's other modes are refused at run start.
"""

from __future__ import annotations

import asyncio
import contextlib
import stat
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from asn1crypto import x509
from cryptography.exceptions import InvalidSignature
from pyhanko.sign.general import SigningError as PyHankoSigningError
from pyhanko.sign.signers.csc_signer import (
    CSCAuthorizationInfo,
    CSCAuthorizationManager,
    CSCCredentialInfo,
    CSCServiceSessionInfo,
    CSCSigner,
    fetch_certs_in_csc_credential,
)
from pyhanko.sign.signers.pdf_cms import Signer
from pyhanko_certvalidator.sig_validate import (
    DEFAULT_SIGNATURE_VALIDATOR,
    SignatureValidationContext,
)

from archive.core.errors import ConfigError, RemoteSignerUnavailableError
from archive.sign.config import CscConfig
from archive.sign.identity import SignerIdentity

__all__ = ["CscSigningKey", "load_csc_signer"]

REQUEST_TIMEOUT_S = 60.0  # per HTTP request to the service
LINGER_S = 0.1  # a batch that did not grow for this long is committed (~TSA round trips)


@dataclass(frozen=True)
class CscSigningKey:
    """A credential at a CSC service: its certificate and chain, and a batching pyHanko signer."""

    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    service_url: str
    _signer: _BatchingCscSigner = field(repr=False)

    @property
    def identity(self) -> SignerIdentity:
        return SignerIdentity.of(self.certificate)

    @property
    def signatures_per_authorisation(self) -> int:
        """How many documents one authorisation may cover: let that many reach the signer."""
        return self._signer.batch_size

    @property
    def authorisations(self) -> int:
        """``credentials/authorize`` calls made by this process so far."""
        return self._signer.authorisation.count

    def pyhanko_signer(self) -> Signer:
        return self._signer


def load_csc_signer(config: CscConfig, *, environ: Mapping[str, str]) -> CscSigningKey:
    """Ask the service for the credential's certificates and capabilities; once per process."""
    session = CSCServiceSessionInfo(
        service_url=config.service_url,
        credential_id=config.credential_id,
        oauth_token=_read_token(config, environ),
    )
    try:
        info = asyncio.run(_credential_info(session))
    except (PyHankoSigningError, aiohttp.ClientError, TimeoutError) as e:
        raise RemoteSignerUnavailableError(
            f"the CSC service at {config.service_url} did not describe the credential "
            f"{config.credential_id!r} ({_cause(e)}): check that it is up, "
            "EMR_ARCHIVE_SIGNER__CSC_CREDENTIAL_ID and the access token"
        ) from e
    _usable_at_night(info, config)
    http = _OneShotSession()
    signer = _BatchingCscSigner(
        _BatchAuthorisation(session, info, http),
        http,
        batch_size=max(1, min(config.batch_size, info.max_batch_size)),
    )
    return CscSigningKey(info.signing_cert, tuple(info.chain), config.service_url, signer)


async def _credential_info(session: CSCServiceSessionInfo) -> CSCCredentialInfo:
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        info: CSCCredentialInfo = await fetch_certs_in_csc_credential(http, session)
        return info


def _usable_at_night(info: CSCCredentialInfo, config: CscConfig) -> None:
    where = f"the CSC credential {config.credential_id!r} at {config.service_url}"
    status = info.response_data.get("key", {}).get("status")
    if status != "enabled":
        raise ConfigError(f"{where} has its key {status or 'in no stated status'}, not enabled")
    mode = info.response_data.get("authMode", "implicit")
    if mode != "implicit":
        # explicit (PIN/OTP per authorisation) and oauth2code need a person at every batch.
        raise ConfigError(
            f"{where} needs authMode {mode!r}, which a person must answer; an unattended "
            "archive needs a credential with authMode 'implicit'"
        )


class _OneShotSession:
    """The part of an aiohttp session ``CSCSigner`` uses (``post``), one session per request:
    the key outlives the event loop of each batch, and a session belongs to one loop."""

    @asynccontextmanager
    async def post(self, url: str, **kwargs: Any) -> AsyncIterator[aiohttp.ClientResponse]:
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(url, **kwargs) as response,
        ):
            yield response


class _BatchAuthorisation(CSCAuthorizationManager):
    """One ``credentials/authorize`` per batch, pinned to the batch's hashes."""

    def __init__(
        self, session: CSCServiceSessionInfo, info: CSCCredentialInfo, http: _OneShotSession
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


class _BatchingCscSigner(CSCSigner):
    """pyHanko's CSC signer, committing a batch once it stops growing and checking every
    signature it gets back."""

    def __init__(
        self, authorisation: _BatchAuthorisation, http: _OneShotSession, *, batch_size: int
    ) -> None:
        super().__init__(
            session=http,  # type: ignore[arg-type]  # duck-typed: CSCSigner only calls post()
            auth_manager=authorisation,
            sign_timeout=int(REQUEST_TIMEOUT_S),
            embed_roots=False,  # as for a local key: validators bring their own anchors
            batch_size=batch_size,
        )
        self.authorisation = authorisation
        self._committer: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None  # why the last failed commit failed

    async def async_sign_raw(
        self, data: bytes, digest_algorithm: str, dry_run: bool = False
    ) -> bytes:
        if dry_run:  # sizes the placeholder; no request
            return bytes(await super().async_sign_raw(data, digest_algorithm, dry_run=True))
        self._commit_when_quiet()
        try:
            signature = bytes(await super().async_sign_raw(data, digest_algorithm))
        except PyHankoSigningError as e:
            cause = self._failure or e
            raise RemoteSignerUnavailableError(
                f"the CSC service at {self._url} did not sign this batch ({_cause(cause)}); "
                "the documents stay for the next run"
            ) from cause
        self._check(signature, data, digest_algorithm)
        return signature

    async def commit(self) -> None:
        try:
            await super().commit()  # type: ignore[no-untyped-call]
        except Exception as e:
            self._failure = e
            raise

    @property
    def _url(self) -> str:
        return str(self.authorisation.csc_session_info.service_url)

    def _commit_when_quiet(self) -> None:
        if self._committer is None or self._committer.done():
            self._committer = asyncio.get_running_loop().create_task(self._commit_batches())

    async def _commit_batches(self) -> None:
        # Documents join the open batch until it is full (pyHanko commits it) or stops growing;
        # then this commits it, and goes on with the batch that formed meanwhile, if any.
        while True:
            size = -1
            while (batch := self._current_batch) is not None and len(batch.b64_hashes) != size:
                size = len(batch.b64_hashes)
                await asyncio.sleep(LINGER_S)
            if batch is None:
                return
            if batch.initiated:
                await batch.notifier.wait()
                continue
            # A failure is kept by commit(); every document of the batch raises it.
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


def _cause(error: BaseException) -> str:
    cause = error.__cause__ or error
    return f"{type(cause).__name__}: {cause}"[:200]


def _read_token(config: CscConfig, environ: Mapping[str, str]) -> str:
    if config.token_env:
        value = environ.get(config.token_env)
        if not value:
            raise ConfigError(
                f"the CSC access token variable {config.token_env} is not set in the "
                "environment of this process"
            )
        return value.strip()
    path = config.token_file
    if path is None:
        raise ConfigError("set EMR_ARCHIVE_SIGNER__CSC_TOKEN_FILE or __CSC_TOKEN_ENV")
    try:
        if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"{path} is readable by other users: run `chmod 600 {path}`")
        token = path.read_text().strip()
    except OSError as e:
        raise ConfigError(f"cannot read the CSC access token file {path} ({e.strerror})") from e
    if not token:
        raise ConfigError(f"the CSC access token file {path} is empty")
    return token

"""Remote signing over the Cloud Signature Consortium API (v1.0.4): the key stays at the service.

A :class:`~archive.sign.config.CscConfig` goes in (service URL, credential id, where the access
token is); a :class:`CscSigningKey` comes out, the same kind of value as a PKCS#12 key, so the
signing stage, the run-start certificate checks (chain, key usage, validity, revocation) and the
signer pinning treat the remote certificate exactly like a local one.

What the service is asked, per batch of documents (one ``sign_batch``): one
``credentials/authorize`` for all of their hashes (pinned to them: a leaked SAD signs nothing
else), then one ``signatures/signHash``. pyHanko's ``CSCSigner`` does the batching;
:mod:`archive.sign.csc_batch` adds what an unattended night needs from it:

* a commit when the batch stops growing (pyHanko commits a full batch, or on demand): every
  document of a ``sign_batch`` reaches its signature in the same turn of the event loop, so one
  authorisation covers them all, up to the credential's ``multisign``;
* every wait bounded: a document gets its signature or fails within a stated time;
* every returned signature verified against the credential's certificate before it is used;
* a service that is down, refuses, stalls or answers nonsense fails the batch's documents as
  :class:`RemoteSignerUnavailableError` (retryable): nothing unsigned or mis-signed is returned.

Only the ``implicit`` authorisation mode is usable at night (no one types a PIN or OTP); the
credential's other modes are refused at run start.
"""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp
from asn1crypto import x509
from pyhanko.sign.general import SigningError as PyHankoSigningError
from pyhanko.sign.signers.csc_signer import (
    CSCCredentialInfo,
    CSCServiceSessionInfo,
    fetch_certs_in_csc_credential,
)
from pyhanko.sign.signers.pdf_cms import Signer

from archive.core.errors import ConfigError, RemoteSignerUnavailableError
from archive.sign.config import CscConfig
from archive.sign.csc_batch import (
    REQUEST_TIMEOUT_S,
    BatchAuthorisation,
    BatchingCscSigner,
    OneShotSession,
    cause_of,
)
from archive.sign.identity import SignerIdentity

__all__ = ["CscSigningKey", "load_csc_signer"]


@dataclass(frozen=True)
class CscSigningKey:
    """A credential at a CSC service: its certificate and chain, and a batching pyHanko signer."""

    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    service_url: str
    _signer: BatchingCscSigner = field(repr=False)

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
            f"{config.credential_id!r} ({cause_of(e)}): check that it is up, "
            "EMR_ARCHIVE_SIGNER__CSC_CREDENTIAL_ID and the access token"
        ) from e
    _usable_at_night(info, config)
    http = OneShotSession()
    signer = BatchingCscSigner(
        BatchAuthorisation(session, info, http),
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

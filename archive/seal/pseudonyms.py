"""Patient pseudonyms, record tokens and quarantine digests: keyed hashes that let the catalog,
object keys and the quarantine index name patients, stays and ids without naming them.

The catalog stores ``p1_`` + HMAC-SHA256 of the patient id, object keys carry a keyed token of
the record id, and the quarantine index names the ids of lines it holds back by ``q1_`` + a keyed
digest: a plain hash of a short numeric id could be reversed by trying them all, a keyed one
cannot. Each use has its own domain label, so one value never equals another's (an index digest
never matches a catalog pseudonym or an object key's token).

The secret must never change (a new one would orphan every catalog entry), so it is kept apart
from the rotating KEKs. Every value here is one HMAC-SHA256 under it, so a key store only has to
provide that (:class:`KeyedHashes`): the local keyring and the transit keyring compute it in
memory (:class:`SecretPseudonyms`; transit decrypts the secret once per process, since a round
trip per pseudonym would cost the catalog and the portal too much), the PKCS#11 keyring on the
token, where the secret never leaves (CKM_SHA256_HMAC gives the same bytes for the same secret).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Protocol

Mac = Callable[[bytes], bytes]  # HMAC-SHA256 under the pseudonym secret, wherever it is kept

_PSEUDONYM_DOMAIN = b"emr-archive/patient-pseudonym/v1\x00"
_PSEUDONYM_PREFIX = "p1_"
_RECORD_TOKEN_DOMAIN = b"emr-archive/record-token/v1\x00"
_RECORD_TOKEN_PREFIX = "r1"  # noqa: S105 - a format tag, not a secret
_QUARANTINE_DOMAIN = b"emr-archive/quarantine-id/v1\x00"
QUARANTINE_DIGEST_PREFIX = "q1_"
_CHAIN_DOMAIN = b"emr-archive/chain-seal/v1\x00"


class Pseudonymizer(Protocol):
    """Turns a patient identifier into a stable pseudonym; the catalog stores only that."""

    def pseudonym(self, patient_id: str) -> str:
        """``"p1_"`` + 64 hex digits; the same input always gives the same pseudonym."""
        ...

    def record_token(self, record_id: str) -> str:
        """A keyed, stable token for a record id, used in object keys instead of the id.

        Record ids (encounter numbers) identify a patient's stay; a plain hash of a short
        numeric id could be reversed by trying them all, a keyed one cannot.
        """
        ...


class KeyedHashes(ABC):
    """The keyed hashes of a key store, all from one HMAC-SHA256 under the pseudonym secret."""

    @abstractmethod
    def _mac(self, data: bytes) -> bytes:
        """HMAC-SHA256 of ``data`` under the pseudonym secret."""

    def pseudonym(self, patient_id: str) -> str:
        return _pseudonym(self._mac, patient_id)

    def record_token(self, record_id: str) -> str:
        return _record_token(self._mac, record_id)

    def quarantine_digest(self, raw_id: object) -> str | None:
        """How the quarantine index names a raw id (see :func:`quarantine_digest`)."""
        return _quarantine_digest(self._mac, raw_id)

    def chain_key(self) -> bytes:
        """Seals chains' HEAD files and names their bucket copies (:mod:`archive.audit.seal`)."""
        return self._mac(_CHAIN_DOMAIN)


class SecretPseudonyms(KeyedHashes):
    """The keyed hashes computed in memory, from the secret itself."""

    def __init__(self, pseudonym_secret: bytes) -> None:
        self._pseudonym_secret = pseudonym_secret

    def _mac(self, data: bytes) -> bytes:
        return _hmac(self._pseudonym_secret)(data)


def _hmac(secret: bytes) -> Mac:
    return lambda data: hmac.new(secret, data, hashlib.sha256).digest()


def pseudonym(secret: bytes, patient_id: str) -> str:
    """HMAC-SHA256 of the NFC form, so the same name typed on two systems matches."""
    return _pseudonym(_hmac(secret), patient_id)


def _pseudonym(mac: Mac, patient_id: str) -> str:
    return _PSEUDONYM_PREFIX + _keyed(mac, _PSEUDONYM_DOMAIN, patient_id, "patient id")


def record_token(secret: bytes, record_id: str) -> str:
    """40 hex digits (160 bits) of a domain-separated HMAC: short enough for object keys."""
    return _record_token(_hmac(secret), record_id)


def _record_token(mac: Mac, record_id: str) -> str:
    return _RECORD_TOKEN_PREFIX + _keyed(mac, _RECORD_TOKEN_DOMAIN, record_id, "record id")[:38]


def quarantine_digest(secret: bytes, value: object) -> str | None:
    """``"q1_"`` + HMAC-SHA256 of a raw id exactly as a source line held it; ``None``: no id.

    Unlike a pseudonym the input is not normalised and may be any JSON value (a bad line's id
    may be a number, a list, an unpaired surrogate): the digest ties entries to one raw value.
    A type tag keeps the string "12" apart from the number 12.
    """
    return _quarantine_digest(_hmac(secret), value)


def _quarantine_digest(mac: Mac, value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        data = b"s" + value.encode("utf-8", "surrogatepass")
    else:
        data = b"j" + json.dumps(value, sort_keys=True, ensure_ascii=True).encode("ascii")
    return QUARANTINE_DIGEST_PREFIX + mac(_QUARANTINE_DOMAIN + data).hex()


def _keyed(mac: Mac, domain: bytes, value: str, what: str) -> str:
    if not value:
        raise ValueError(f"{what} is empty")
    try:
        encoded: bytes | None = unicodedata.normalize("NFC", value).encode("utf-8")
    except UnicodeEncodeError:
        encoded = None
    if encoded is None:
        # Raised outside the handler: the UnicodeEncodeError quotes the input (PHI) and must
        # not ride along as __context__ into logs or error trackers.
        raise ValueError(f"{what} is not valid Unicode text")
    return mac(domain + encoded).hex()


def chain_key(secret: bytes) -> bytes:
    """The key that seals hash chains' HEAD files and names their bucket copies
    (:mod:`archive.audit.seal`). From the pseudonym secret, which never changes (a rotated key
    would leave every HEAD unverifiable), under its own label so it equals no pseudonym."""
    return _hmac(secret)(_CHAIN_DOMAIN)

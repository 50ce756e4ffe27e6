"""Object keys: where things live in the bucket, with no PHI in any key.

Keys carry a facility code (public: the Ministry's MA_CSKCB) and a keyed record token from the
keyring (never the encounter id, the patient or a date of care). The two hex characters after the
facility spread keys over prefixes, which S3 partitions by.
"""

from __future__ import annotations

import hashlib
import re

from archive.core.errors import ArchiveError

RECORDS_PREFIX = "records/v1/"
FILES_PREFIX = "files/v1/"
QUARANTINE_PREFIX = "quarantine/v1/"
EVIDENCE_PREFIX = "evidence/v1/"
EVIDENCE_RECORDS_PREFIX = EVIDENCE_PREFIX + "records/"
LEASES_PREFIX = "runs/leases/v1/"
# Coordination, not archive content: the stack's readiness probe (deleted right after it is
# written) and the run leases (unlocked, rewritten every few minutes, meaningful only at the
# site the runs use). The second site holds no copy, so neither the replica check nor repair
# looks for one.
UNREPLICATED_PREFIXES = ("_health/", LEASES_PREFIX)

_FACILITY = re.compile(r"^[A-Za-z0-9]{1,16}$")
_TOKEN = re.compile(r"^r1[0-9a-f]{38}$")
_VERSION = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


class NamingError(ArchiveError):
    """A facility code or token is not safe to put in an object key."""


def record_key(*, facility: str, token: str) -> str:
    """Key of one archived record (a signed, sealed PDF/A)."""
    return f"{RECORDS_PREFIX}{_facility(facility)}/{_token(token)[2:4]}/{token}"


def file_key(*, token: str) -> str:
    """Key of an ad-hoc sealed file (``emr-archive put``), outside the record series."""
    return f"{FILES_PREFIX}{_token(token)[2:4]}/{token}"


def quarantine_key(*, token: str) -> str:
    """Key of one sealed quarantine entry; the token derives from its content, so a rerun that
    quarantines the same line again finds the entry already stored."""
    return f"{QUARANTINE_PREFIX}{_token(token)[2:4]}/{token}"


def evidence_key(*, object_key: str, version_id: str) -> str:
    """Key of the RFC 4998 evidence record of one stored version, derived from the catalog row
    alone (so verification and export find it without an index): the record's pseudonymous key
    under ``evidence/v1/records/`` plus its version. A version id with characters we would not
    put in a key is replaced by its SHA-256 (still deterministic)."""
    if not object_key.startswith(RECORDS_PREFIX):
        raise NamingError("evidence records are kept for objects under records/v1/ only")
    version = (
        version_id
        if _VERSION.match(version_id)
        else hashlib.sha256(version_id.encode()).hexdigest()
    )
    return f"{EVIDENCE_RECORDS_PREFIX}{object_key[len(RECORDS_PREFIX) :]}/{version}.ers"


def record_of_evidence_key(key: str) -> str | None:
    """The record key an :func:`evidence_key` was derived from; None for other evidence keys
    (a catalog manifest's). The version part may be a digest, so only the key comes back."""
    if not key.startswith(EVIDENCE_RECORDS_PREFIX) or "/" not in key:
        return None
    return RECORDS_PREFIX + key[len(EVIDENCE_RECORDS_PREFIX) :].rsplit("/", 1)[0]


def _facility(code: str) -> str:
    if not _FACILITY.match(code):
        raise NamingError("facility code must be 1-16 ASCII letters or digits")
    return code


def _token(token: str) -> str:
    if not _TOKEN.match(token):
        raise NamingError("record token is not a keyring record token (r1 + 38 hex)")
    return token

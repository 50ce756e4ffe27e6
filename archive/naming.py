"""Object keys: where things live in the bucket, with no PHI in any key.

Keys carry a facility code (public: the Ministry's MA_CSKCB) and a keyed record token from the
keyring (never the encounter id, the patient or a date of care). The two hex characters after the
facility spread keys over prefixes, which S3 partitions by.
"""

from __future__ import annotations

import re

from archive.errors import ArchiveError

RECORDS_PREFIX = "records/v1/"
FILES_PREFIX = "files/v1/"
QUARANTINE_PREFIX = "quarantine/v1/"

_FACILITY = re.compile(r"^[A-Za-z0-9]{1,16}$")
_TOKEN = re.compile(r"^r1[0-9a-f]{38}$")
_RUN_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class NamingError(ArchiveError):
    """A facility code, token or run id is not safe to put in an object key."""


def record_key(*, facility: str, token: str) -> str:
    """Key of one archived record (a signed, sealed PDF/A)."""
    return f"{RECORDS_PREFIX}{_facility(facility)}/{_token(token)[2:4]}/{token}"


def file_key(*, token: str) -> str:
    """Key of an ad-hoc sealed file (``emr-archive put``), outside the record series."""
    return f"{FILES_PREFIX}{_token(token)[2:4]}/{token}"


def quarantine_key(*, run_id: str, sequence: int) -> str:
    """Key of one sealed quarantine entry of an archive run."""
    if not _RUN_ID.match(run_id) or sequence < 0:
        raise NamingError("run id or sequence not usable in an object key")
    return f"{QUARANTINE_PREFIX}{run_id}/{sequence:08d}"


def _facility(code: str) -> str:
    if not _FACILITY.match(code):
        raise NamingError("facility code must be 1-16 ASCII letters or digits")
    return code


def _token(token: str) -> str:
    if not _TOKEN.match(token):
        raise NamingError("record token is not a keyring record token (r1 + 38 hex)")
    return token

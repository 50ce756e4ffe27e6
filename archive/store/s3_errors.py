"""botocore's errors translated, once, into the archive's exception tree.

Callers of the store only need to tell apart what they act on: a missing object, a lock the store
refused to weaken, a store that is unwell (try later) and everything else. A 500 InternalError is
deliberately not "unwell": SeaweedFS answers 500 for a block that fails its CRC, which is damage,
not a blip, and must not be retried away.
"""

from __future__ import annotations

from botocore.exceptions import ClientError, NoCredentialsError

from archive.core.errors import (
    BucketNotCompliantError,
    LockRefusedError,
    ObjectNotFoundError,
    StoreError,
    StoreUnavailableError,
)

NOT_FOUND = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound"})
# Throttling and unavailability: the store said "not now".
_TRANSIENT = frozenset({"SlowDown", "ServiceUnavailable", "RequestTimeout", "503"})
_REFUSED = frozenset({"AccessDenied", "InvalidRequest", "InvalidArgument", "403"})
_LOCK_CHANGES = frozenset(
    {"DeleteObject", "PutObjectRetention", "PutObjectLegalHold", "PutBucketVersioning"}
)


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def translate(error: Exception, *, where: str, endpoint: str, op: str) -> StoreError:
    """The archive's error for ``error`` raised by ``op``; ``where`` names operation and object."""
    if isinstance(error, ClientError):
        return _client_error(error, where=where, endpoint=endpoint, op=op)
    if isinstance(error, NoCredentialsError):
        return StoreError(
            f"{where}: no S3 credentials found; set EMR_ARCHIVE_S3__ACCESS_KEY_ID and "
            "EMR_ARCHIVE_S3__SECRET_ACCESS_KEY, or the standard AWS_* variables or profile"
        )
    return StoreUnavailableError(
        f"{where}: cannot reach the object store at {endpoint} after retries "
        f"({type(error).__name__}); is it running? (`emr-archive stack status`)"
    )


def _client_error(error: ClientError, *, where: str, endpoint: str, op: str) -> StoreError:
    code = error_code(error)
    if code == "NoSuchBucket":
        return BucketNotCompliantError(
            f"{where}: bucket does not exist at {endpoint}; run "
            "`emr-archive stack up` (embedded) or create it with Object Lock"
        )
    if code in NOT_FOUND:
        return ObjectNotFoundError(f"{where}: no such object or version")
    if code in _REFUSED and op in _LOCK_CHANGES:
        return LockRefusedError(
            f"{where}: refused by the store ({code}); locked "
            "records cannot be deleted, shortened or weakened"
        )
    if code in {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"}:
        return StoreError(f"{where}: access denied ({code}); check the S3 credentials")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if code in _TRANSIENT or status == 503:
        # Still failing after botocore's retries: the store is unwell, the object is not known
        # to be damaged.
        return StoreUnavailableError(
            f"{where}: the store kept answering {code} after retries; try again later"
        )
    return StoreError(f"{where}: the store answered {code}")

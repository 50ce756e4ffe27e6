"""The S3 adapter of :class:`archive.store.ObjectStore` (AWS S3, SeaweedFS, MinIO, Ceph RGW).

Everything boto3 does for the store goes through here: the client comes from
:mod:`.s3_client`, and every botocore error leaves as an archive error (:mod:`.s3_errors`).

Create-once semantics come from the store, not from us: ``IfNoneMatch='*'`` makes a second PUT of
a key fail with 412, so a retried or resumed write can never add a second version. On 412 we read
the current version back: identical bytes mean the earlier attempt landed (we adopt it), other
bytes are a conflict the operator must look at.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError, FlexibleChecksumError

from archive.core.errors import BucketNotCompliantError, ObjectConflictError, StoreError
from archive.core.settings import Settings
from archive.store.base import (
    COMPLIANCE,
    ObjectHead,
    ObjectLock,
    ObjectRead,
    ObjectVersion,
    PutResult,
)
from archive.store.s3_client import S3Role, Site, make_client
from archive.store.s3_errors import NOT_FOUND, error_code, translate

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class S3ObjectStore:
    """Create-once, COMPLIANCE-locked objects in one bucket."""

    def __init__(self, *, client: S3Client, bucket: str, endpoint: str) -> None:
        self._client = client
        self._bucket = bucket
        self._endpoint = endpoint

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        read_only: bool = False,
        role: S3Role = "admin",
        site: Site = "primary",
    ) -> S3ObjectStore:
        primary = site == "primary"
        return cls(
            client=make_client(settings, read_only=read_only, role=role, site=site),
            bucket=settings.s3.bucket if primary else settings.replica.bucket,
            endpoint=settings.s3_endpoint_url if primary else settings.replica_endpoint_url,
        )

    @property
    def bucket(self) -> str:
        return self._bucket

    @property
    def client(self) -> S3Client:
        return self._client

    def ensure_compliant(self) -> None:
        versioning = self._call(
            "GetBucketVersioning", self._client.get_bucket_versioning, Bucket=self._bucket
        )
        try:
            lock = self._client.get_object_lock_configuration(Bucket=self._bucket)
            lock_enabled = lock.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled")
        except ClientError as e:
            if error_code(e) != "ObjectLockConfigurationNotFoundError":
                raise self._translate(e, "GetObjectLockConfiguration") from e
            lock_enabled = None
        except BotoCoreError as e:
            raise self._translate(e, "GetObjectLockConfiguration") from e
        if versioning.get("Status") != "Enabled" or lock_enabled != "Enabled":
            raise BucketNotCompliantError(
                f"bucket {self._bucket!r} at {self._endpoint} does not have Object Lock and "
                "versioning enabled; the archive refuses to store records where they could be "
                "deleted. Create the bucket with Object Lock (ObjectLockEnabledForBucket=true) "
                "or point EMR_ARCHIVE_S3__BUCKET at one that has it"
            )

    def create_locked_bucket(self) -> None:
        """Create the bucket with Object Lock (and so versioning); a no-op when it exists."""
        try:
            self._client.create_bucket(Bucket=self._bucket, ObjectLockEnabledForBucket=True)
        except ClientError as e:
            if error_code(e) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                raise self._translate(e, "CreateBucket") from e
        except BotoCoreError as e:
            raise self._translate(e, "CreateBucket") from e
        self.ensure_compliant()

    def put_locked(self, key: str, data: bytes, *, retain_until: datetime) -> PutResult:
        digest = hashlib.sha256(data).digest()
        sha_hex = digest.hex()
        try:
            response = self._client.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=data,
                ChecksumSHA256=base64.b64encode(digest).decode("ascii"),
                ObjectLockMode=COMPLIANCE,
                ObjectLockRetainUntilDate=_utc(retain_until),
                IfNoneMatch="*",
                ContentType="application/octet-stream",
            )
        except ClientError as e:
            if error_code(e) in {"PreconditionFailed", "412"}:
                return self._adopt_existing(key, sha_hex, len(data))
            raise self._translate(e, "PutObject", key) from e
        except BotoCoreError as e:
            raise self._translate(e, "PutObject", key) from e
        version_id = response.get("VersionId")
        if not version_id:
            raise BucketNotCompliantError(
                f"the store returned no version id for {key}: bucket {self._bucket!r} is not "
                "versioned; the archive needs Object Lock and versioning"
            )
        return PutResult(key, version_id, sha_hex, len(data), created=True)

    def create(self, key: str, data: bytes) -> str | None:
        """:class:`archive.store.ClaimStore`: a conditional create without a lock."""
        try:
            response = self._client.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=data,
                ChecksumSHA256=base64.b64encode(hashlib.sha256(data).digest()).decode("ascii"),
                IfNoneMatch="*",
                ContentType="application/octet-stream",
            )
        except ClientError as e:
            if error_code(e) in {"PreconditionFailed", "412"}:
                return None
            raise self._translate(e, "PutObject", key) from e
        except BotoCoreError as e:
            raise self._translate(e, "PutObject", key) from e
        return str(response.get("VersionId", ""))

    def _adopt_existing(self, key: str, sha_hex: str, size: int) -> PutResult:
        current = self.latest(key)
        if current is None:  # the blocking version vanished between calls: a conflict to look at
            raise ObjectConflictError(f"{key} refused a create but has no current version")
        if current.sha256 is None:
            current_sha = hashlib.sha256(self.get(key, version_id=current.version_id)).hexdigest()
        else:
            current_sha = current.sha256
        if current_sha != sha_hex:
            raise ObjectConflictError(
                f"{key} already holds different bytes (version {current.version_id}); nothing "
                "was overwritten. Check the catalog and verification report for this key"
            )
        return PutResult(key, current.version_id, sha_hex, size, created=False)

    def get(self, key: str, *, version_id: str) -> bytes:
        response = self._call(
            "GetObject",
            self._client.get_object,
            key=key,
            Bucket=self._bucket,
            Key=key,
            VersionId=version_id,
        )
        try:
            body: bytes = response["Body"].read()
        except BotoCoreError as e:
            raise self._translate(e, "GetObject", key) from e
        return body

    def read(self, key: str, *, version_id: str) -> ObjectRead:
        """:class:`archive.store.MetaReader`: one GET for the bytes and, with
        ``ChecksumMode=ENABLED``, the version's SHA-256 checksum, lock mode, retain-until and hold
        status in its headers (SeaweedFS 4.48 and AWS send them; AWS leaves the hold out without
        ``s3:GetObjectLegalHold``: then ``head`` is None and the caller asks HEAD)."""
        response = self._call(
            "GetObject",
            self._client.get_object,
            key=key,
            Bucket=self._bucket,
            Key=key,
            VersionId=version_id,
            ChecksumMode="ENABLED",
        )
        digest, chunks = hashlib.sha256(), []
        try:
            for chunk in response["Body"].iter_chunks(_CHUNK):
                digest.update(chunk)
                chunks.append(chunk)
        except FlexibleChecksumError:
            # botocore compares the bytes with the store's checksum once the last one arrived
            # (the length is checked first): bytes changed under unchanged metadata. They are
            # returned with our own hash, which the caller holds against the catalog's.
            pass
        except BotoCoreError as e:
            raise self._translate(e, "GetObject", key) from e
        complete = all(response.get(h) for h in _READ_HEADERS)
        return ObjectRead(
            b"".join(chunks), digest.hexdigest(), _head(key, response) if complete else None
        )

    def head(self, key: str, *, version_id: str) -> ObjectHead:
        response = self._call(
            "HeadObject",
            self._client.head_object,
            key=key,
            Bucket=self._bucket,
            Key=key,
            VersionId=version_id,
            ChecksumMode="ENABLED",
        )
        return _head(key, response)

    def latest(self, key: str) -> ObjectHead | None:
        try:
            response = self._client.head_object(
                Bucket=self._bucket, Key=key, ChecksumMode="ENABLED"
            )
        except ClientError as e:
            if error_code(e) in NOT_FOUND | {"MethodNotAllowed"}:  # a delete marker answers 405
                return None
            raise self._translate(e, "HeadObject", key) from e
        except BotoCoreError as e:
            raise self._translate(e, "HeadObject", key) from e
        return _head(key, response)

    def list_versions(self, prefix: str = "", *, start_after: str = "") -> Iterator[ObjectVersion]:
        paginator = self._client.get_paginator("list_object_versions")
        # The stubs leave out the paginator's own token, which botocore sends on the first page.
        marker: dict[str, Any] = {"KeyMarker": start_after} if start_after else {}
        pages = paginator.paginate(Bucket=self._bucket, Prefix=prefix, **marker)
        try:
            for page in pages:
                for v in page.get("Versions", []):
                    if v["Key"] <= start_after:  # the marker is exclusive; a store may differ
                        continue
                    yield ObjectVersion(
                        v["Key"],
                        v["VersionId"],
                        v.get("Size", 0),
                        v.get("IsLatest", False),
                        False,
                        _utc(v["LastModified"]),
                    )
                for m in page.get("DeleteMarkers", []):
                    if m["Key"] <= start_after:
                        continue
                    yield ObjectVersion(
                        m["Key"],
                        m["VersionId"],
                        0,
                        m.get("IsLatest", False),
                        True,
                        _utc(m["LastModified"]),
                    )
        except (ClientError, BotoCoreError) as e:
            raise self._translate(e, "ListObjectVersions") from e

    def extend_retention(self, key: str, *, version_id: str, retain_until: datetime) -> None:
        self._call(
            "PutObjectRetention",
            self._client.put_object_retention,
            key=key,
            Bucket=self._bucket,
            Key=key,
            VersionId=version_id,
            Retention={"Mode": COMPLIANCE, "RetainUntilDate": _utc(retain_until)},
        )

    def set_legal_hold(self, key: str, *, version_id: str, on: bool) -> None:
        self._call(
            "PutObjectLegalHold",
            self._client.put_object_legal_hold,
            key=key,
            Bucket=self._bucket,
            Key=key,
            VersionId=version_id,
            LegalHold={"Status": "ON" if on else "OFF"},
        )

    def delete_version(self, key: str, *, version_id: str) -> None:
        """Permanently delete one version; the store refuses while it is locked or held."""
        self._call(
            "DeleteObject",
            self._client.delete_object,
            key=key,
            Bucket=self._bucket,
            Key=key,
            VersionId=version_id,
        )

    # -- botocore errors leave here, translated by s3_errors -----------------------------------

    def _call(self, op: str, fn: Any, *, key: str | None = None, **kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except (ClientError, BotoCoreError) as e:
            raise self._translate(e, op, key) from e

    def _translate(self, error: Exception, op: str, key: str | None = None) -> StoreError:
        where = f"{op} {self._bucket}/{key}" if key else f"{op} {self._bucket}"
        return translate(error, where=where, endpoint=self._endpoint, op=op)


_CHUNK = 1 << 20
# What a GET must answer to stand in for a HEAD (the size always comes: Content-Length).
_READ_HEADERS = ("ChecksumSHA256", "ObjectLockMode", "ObjectLockLegalHoldStatus")


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime: the archive only handles timezone-aware times")
    return value.astimezone(UTC)


def _head(key: str, response: Any) -> ObjectHead:
    until = response.get("ObjectLockRetainUntilDate")
    checksum = response.get("ChecksumSHA256")
    sha = None
    if checksum and "-" not in checksum:  # "-N" suffix: a multipart composite, not the object's
        try:
            sha = base64.b64decode(checksum, validate=True).hex()
        except binascii.Error:
            sha = None
    return ObjectHead(
        key=key,
        version_id=response.get("VersionId", ""),
        size=int(response.get("ContentLength", 0)),
        sha256=sha,
        lock=ObjectLock(
            mode=response.get("ObjectLockMode"),
            retain_until=_utc(until) if until is not None else None,
            legal_hold=response.get("ObjectLockLegalHoldStatus") == "ON",
        ),
    )

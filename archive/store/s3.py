"""The S3 adapter of :class:`archive.store.ObjectStore` (AWS S3, SeaweedFS, MinIO, Ceph RGW).

Everything boto3 lives here, and every botocore error is translated once into the archive's
exception tree. Retries (5xx, SlowDown, throttling, dropped connections) are botocore's "standard"
mode — exponential backoff with jitter — not a hand-written loop.

Create-once semantics come from the store, not from us: ``IfNoneMatch='*'`` makes a second PUT of
a key fail with 412, so a retried or resumed write can never add a second version. On 412 we read
the current version back: identical bytes mean the earlier attempt landed (we adopt it), other
bytes are a conflict the operator must look at.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from archive.core.atomic import write_private
from archive.core.errors import (
    BucketNotCompliantError,
    ConfigError,
    LockRefusedError,
    ObjectConflictError,
    ObjectNotFoundError,
    StoreError,
    StoreUnavailableError,
)
from archive.core.settings import Settings
from archive.store.base import COMPLIANCE, ObjectHead, ObjectLock, ObjectVersion, PutResult

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_NOT_FOUND = {"NoSuchKey", "NoSuchVersion", "404", "NotFound"}
# Throttling and unavailability: the store said "not now". A 500 InternalError is not here on
# purpose: SeaweedFS answers 500 for a block that fails its CRC, which is damage, not a blip.
_TRANSIENT = {"SlowDown", "ServiceUnavailable", "RequestTimeout", "503"}
_REFUSED = {"AccessDenied", "InvalidRequest", "InvalidArgument", "403"}


# --- credentials of the embedded stack -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class S3Credentials:
    access_key_id: str
    secret_access_key: str

    def __repr__(self) -> str:  # never print the secret
        return f"S3Credentials(access_key_id={self.access_key_id!r}, secret_access_key='***')"


@dataclass(frozen=True, slots=True)
class DevCredentials:
    """Identities the embedded SeaweedFS was started with (``<data_dir>/seaweedfs``, 0600)."""

    admin: S3Credentials
    reader: S3Credentials

    FILE_NAME = "credentials.json"

    @classmethod
    def path(cls, seaweedfs_dir: Path) -> Path:
        return seaweedfs_dir / cls.FILE_NAME

    @classmethod
    def load(cls, seaweedfs_dir: Path) -> DevCredentials:
        path = cls.path(seaweedfs_dir)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return cls(admin=S3Credentials(**raw["admin"]), reader=S3Credentials(**raw["reader"]))
        except FileNotFoundError:
            raise ConfigError(
                f"no S3 endpoint configured and no embedded stack credentials at {path}: "
                "run `emr-archive stack up`, or set EMR_ARCHIVE_S3__ENDPOINT_URL"
            ) from None
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(
                f"{path} is not a valid credentials file: delete it and run "
                "`emr-archive stack up` again"
            ) from e

    def save(self, seaweedfs_dir: Path) -> None:
        path = self.path(seaweedfs_dir)
        body = json.dumps(
            {
                "admin": {
                    "access_key_id": self.admin.access_key_id,
                    "secret_access_key": self.admin.secret_access_key,
                },
                "reader": {
                    "access_key_id": self.reader.access_key_id,
                    "secret_access_key": self.reader.secret_access_key,
                },
            },
            indent=2,
        )
        write_private(path, body)


# --- client --------------------------------------------------------------------------------------


def make_client(settings: Settings, *, read_only: bool = False) -> S3Client:
    """A boto3 S3 client for the configured endpoint (embedded stack when none is set)."""
    s3 = settings.s3
    config = Config(
        region_name=s3.region,
        retries={"mode": "standard", "total_max_attempts": s3.max_attempts},
        connect_timeout=s3.connect_timeout_s,
        read_timeout=s3.read_timeout_s,
        s3={"addressing_style": s3.addressing_style},
        # We send SHA-256 ourselves; avoid botocore adding a second (CRC) checksum per request.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    kwargs: dict[str, Any] = {"endpoint_url": settings.s3_endpoint_url, "config": config}
    creds = _credentials(settings, read_only=read_only)
    if creds is not None:
        kwargs["aws_access_key_id"] = creds.access_key_id
        kwargs["aws_secret_access_key"] = creds.secret_access_key
    client: S3Client = boto3.session.Session().client("s3", **kwargs)
    return client


def _credentials(settings: Settings, *, read_only: bool) -> S3Credentials | None:
    s3 = settings.s3
    if s3.access_key_id and s3.secret_access_key:
        return S3Credentials(s3.access_key_id, s3.secret_access_key.get_secret_value())
    if settings.uses_embedded_s3:
        dev = DevCredentials.load(settings.seaweedfs_dir)
        return dev.reader if read_only else dev.admin
    return None  # boto3's standard chain: AWS_ACCESS_KEY_ID, AWS_PROFILE, instance roles, ...


# --- the store -----------------------------------------------------------------------------------


class S3ObjectStore:
    """Create-once, COMPLIANCE-locked objects in one bucket."""

    def __init__(self, *, client: S3Client, bucket: str, endpoint: str) -> None:
        self._client = client
        self._bucket = bucket
        self._endpoint = endpoint

    @classmethod
    def from_settings(cls, settings: Settings, *, read_only: bool = False) -> S3ObjectStore:
        return cls(
            client=make_client(settings, read_only=read_only),
            bucket=settings.s3.bucket,
            endpoint=settings.s3_endpoint_url,
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
            if _code(e) != "ObjectLockConfigurationNotFoundError":
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
            if _code(e) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
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
            if _code(e) in {"PreconditionFailed", "412"}:
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
            if _code(e) in _NOT_FOUND or _code(e) == "MethodNotAllowed":  # delete marker: 405
                return None
            raise self._translate(e, "HeadObject", key) from e
        except BotoCoreError as e:
            raise self._translate(e, "HeadObject", key) from e
        return _head(key, response)

    def list_versions(self, prefix: str = "") -> Iterator[ObjectVersion]:
        paginator = self._client.get_paginator("list_object_versions")
        try:
            for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
                for v in page.get("Versions", []):
                    yield ObjectVersion(
                        v["Key"],
                        v["VersionId"],
                        v.get("Size", 0),
                        v.get("IsLatest", False),
                        False,
                        _utc(v["LastModified"]),
                    )
                for m in page.get("DeleteMarkers", []):
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

    # -- error translation, once, here --------------------------------------------------------

    def _call(self, op: str, fn: Any, *, key: str | None = None, **kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except (ClientError, BotoCoreError) as e:
            raise self._translate(e, op, key) from e

    def _translate(self, error: Exception, op: str, key: str | None = None) -> StoreError:
        where = f"{op} {self._bucket}/{key}" if key else f"{op} {self._bucket}"
        if isinstance(error, ClientError):
            code = _code(error)
            if code == "NoSuchBucket":
                return BucketNotCompliantError(
                    f"{where}: bucket does not exist at {self._endpoint}; run "
                    "`emr-archive stack up` (embedded) or create it with Object Lock"
                )
            if code in _NOT_FOUND:
                return ObjectNotFoundError(f"{where}: no such object or version")
            if code in _REFUSED and op in {
                "DeleteObject",
                "PutObjectRetention",
                "PutObjectLegalHold",
                "PutBucketVersioning",
            }:
                return LockRefusedError(
                    f"{where}: refused by the store ({code}); locked "
                    "records cannot be deleted, shortened or weakened"
                )
            if code in {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"}:
                return StoreError(f"{where}: access denied ({code}); check the S3 credentials")
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in _TRANSIENT or status == 503:
                # Still failing after botocore's retries: the store is unwell, the object
                # is not known to be damaged.
                return StoreUnavailableError(
                    f"{where}: the store kept answering {code} after retries; try again later"
                )
            return StoreError(f"{where}: the store answered {code}")
        if isinstance(error, NoCredentialsError):
            return StoreError(
                f"{where}: no S3 credentials found; set EMR_ARCHIVE_S3__ACCESS_KEY_ID and "
                "EMR_ARCHIVE_S3__SECRET_ACCESS_KEY, or the standard AWS_* variables or profile"
            )
        return StoreUnavailableError(
            f"{where}: cannot reach the object store at {self._endpoint} after retries "
            f"({type(error).__name__}); is it running? (`emr-archive stack status`)"
        )


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


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

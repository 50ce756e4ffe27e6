"""WORM conformance of the embedded store: what a locked record must survive.

Every refusal is checked twice, through the archive's own store code and through plain boto3, so
that a regression in either the store or our wrapper shows up.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from archive.core.errors import (
    BucketNotCompliantError,
    LockRefusedError,
    ObjectConflictError,
    StoreUnavailableError,
)
from archive.core.settings import S3Settings
from archive.store import DevCredentials, PutResult, S3ObjectStore, make_client
from infra import seaweed
from infra.settings import AppSettings as Settings

pytestmark = pytest.mark.integration


def _locked(store: S3ObjectStore, retain_until: datetime) -> tuple[PutResult, bytes]:
    data = secrets.token_bytes(2048)
    return store.put_locked(
        f"test/worm/{secrets.token_hex(8)}", data, retain_until=retain_until
    ), data


def _refused(call: object) -> None:
    with pytest.raises(ClientError) as info:
        call()  # type: ignore[operator]
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] in {400, 403, 409}


def test_put_locked_sets_compliance_lock_and_checksum(
    store: S3ObjectStore, retain_until: datetime
) -> None:
    put, data = _locked(store, retain_until)
    head = store.head(put.key, version_id=put.version_id)
    assert put.created
    assert head.lock.mode == "COMPLIANCE"
    assert head.lock.retain_until == retain_until
    assert head.sha256 == put.sha256
    assert store.get(put.key, version_id=put.version_id) == data


def test_retried_create_returns_the_same_version(
    store: S3ObjectStore, retain_until: datetime
) -> None:
    put, data = _locked(store, retain_until)
    again = store.put_locked(put.key, data, retain_until=retain_until)
    assert (again.version_id, again.created) == (put.version_id, False)
    assert len([v for v in store.list_versions(put.key)]) == 1


def test_create_with_other_bytes_is_a_conflict_and_writes_nothing(
    store: S3ObjectStore, retain_until: datetime
) -> None:
    put, data = _locked(store, retain_until)
    with pytest.raises(ObjectConflictError):
        store.put_locked(put.key, data + b"x", retain_until=retain_until)
    assert [v.version_id for v in store.list_versions(put.key)] == [put.version_id]


def test_delete_by_version_is_refused(store: S3ObjectStore, retain_until: datetime) -> None:
    put, data = _locked(store, retain_until)
    with pytest.raises(LockRefusedError):
        store.delete_version(put.key, version_id=put.version_id)
    _refused(
        lambda: store.client.delete_object(
            Bucket=store.bucket, Key=put.key, VersionId=put.version_id
        )
    )
    assert store.get(put.key, version_id=put.version_id) == data


def test_bypass_governance_header_does_not_unlock_compliance(
    store: S3ObjectStore, retain_until: datetime
) -> None:
    put, data = _locked(store, retain_until)
    _refused(
        lambda: store.client.delete_object(
            Bucket=store.bucket,
            Key=put.key,
            VersionId=put.version_id,
            BypassGovernanceRetention=True,
        )
    )
    # The batch API answers 200 and reports refusals per key.
    batch = store.client.delete_objects(
        Bucket=store.bucket,
        BypassGovernanceRetention=True,
        Delete={"Objects": [{"Key": put.key, "VersionId": put.version_id}]},
    )
    assert not batch.get("Deleted")
    assert [e["Key"] for e in batch.get("Errors", [])] == [put.key]
    assert store.get(put.key, version_id=put.version_id) == data


def test_overwrite_adds_a_version_and_leaves_the_locked_one_intact(
    store: S3ObjectStore, retain_until: datetime
) -> None:
    put, data = _locked(store, retain_until)
    store.client.put_object(Bucket=store.bucket, Key=put.key, Body=b"replacement")
    assert store.get(put.key, version_id=put.version_id) == data
    head = store.head(put.key, version_id=put.version_id)
    assert head.lock.mode == "COMPLIANCE"
    assert head.lock.retain_until == retain_until
    latest = store.latest(put.key)
    assert latest is not None
    assert latest.version_id != put.version_id


def test_retention_cannot_be_shortened_but_can_be_extended(
    store: S3ObjectStore, retain_until: datetime
) -> None:
    put, _ = _locked(store, retain_until)
    with pytest.raises(LockRefusedError):
        store.extend_retention(
            put.key, version_id=put.version_id, retain_until=retain_until - timedelta(hours=1)
        )
    longer = retain_until + timedelta(days=1)
    store.extend_retention(put.key, version_id=put.version_id, retain_until=longer)
    assert store.head(put.key, version_id=put.version_id).lock.retain_until == longer


def test_compliance_cannot_become_governance(store: S3ObjectStore, retain_until: datetime) -> None:
    put, _ = _locked(store, retain_until)
    _refused(
        lambda: store.client.put_object_retention(
            Bucket=store.bucket,
            Key=put.key,
            VersionId=put.version_id,
            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": retain_until + timedelta(days=1)},
        )
    )
    assert store.head(put.key, version_id=put.version_id).lock.mode == "COMPLIANCE"


def test_versioning_cannot_be_suspended(store: S3ObjectStore) -> None:
    _refused(
        lambda: store.client.put_bucket_versioning(
            Bucket=store.bucket, VersioningConfiguration={"Status": "Suspended"}
        )
    )
    store.ensure_compliant()


def test_plain_delete_only_adds_a_delete_marker(
    store: S3ObjectStore, retain_until: datetime
) -> None:
    put, data = _locked(store, retain_until)
    marker = store.client.delete_object(Bucket=store.bucket, Key=put.key)
    assert marker.get("DeleteMarker") is True
    assert store.latest(put.key) is None
    assert store.get(put.key, version_id=put.version_id) == data
    kinds = sorted(
        (v.is_delete_marker, v.version_id == put.version_id) for v in store.list_versions(put.key)
    )
    assert kinds == [(False, True), (True, False)]


def test_past_retain_until_is_rejected(store: S3ObjectStore, retain_until: datetime) -> None:
    with pytest.raises(ClientError):
        store.client.put_object(
            Bucket=store.bucket,
            Key=f"test/worm/{secrets.token_hex(8)}",
            Body=b"x",
            ObjectLockMode="COMPLIANCE",
            ObjectLockRetainUntilDate=retain_until - timedelta(days=30),
        )


def test_wrong_checksum_is_rejected(store: S3ObjectStore, retain_until: datetime) -> None:
    key = f"test/worm/{secrets.token_hex(8)}"
    with pytest.raises(ClientError):
        store.client.put_object(
            Bucket=store.bucket,
            Key=key,
            Body=b"the real bytes",
            ChecksumSHA256="47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",  # sha256 of b""
            ObjectLockMode="COMPLIANCE",
            ObjectLockRetainUntilDate=retain_until,
        )
    assert store.latest(key) is None


def test_read_only_identity_reads_but_cannot_write(
    stack_settings: Settings, store: S3ObjectStore, retain_until: datetime
) -> None:
    put, data = _locked(store, retain_until)
    reader = S3ObjectStore.from_settings(stack_settings, read_only=True)
    assert reader.get(put.key, version_id=put.version_id) == data
    _refused(lambda: reader.client.put_object(Bucket=store.bucket, Key="test/ro", Body=b"x"))


def test_wrong_and_anonymous_credentials_are_refused(stack_settings: Settings) -> None:
    creds = DevCredentials.load(stack_settings.seaweedfs_dir)
    for key_id, secret in ((creds.admin.access_key_id, "not-the-secret"), ("", "")):
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=stack_settings.s3_endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=key_id or None,
            aws_secret_access_key=secret or None,
            config=Config(
                signature_version=UNSIGNED if not key_id else "s3v4",
                retries={"total_max_attempts": 1},
            ),
        )
        _refused(lambda c=client: c.list_objects_v2(Bucket=stack_settings.s3.bucket))


def test_bucket_without_object_lock_is_refused(stack_settings: Settings) -> None:
    plain = stack_settings.model_copy(
        update={"s3": stack_settings.s3.model_copy(update={"bucket": "no-lock-here"})}
    )
    client = make_client(plain)
    client.create_bucket(Bucket="no-lock-here")
    with pytest.raises(BucketNotCompliantError, match="no-lock-here"):
        S3ObjectStore.from_settings(plain).ensure_compliant()


def test_unreachable_store_is_a_clear_error(stack_settings: Settings) -> None:
    dead = Settings(
        data_dir=stack_settings.data_dir,
        s3=S3Settings(
            endpoint_url="http://127.0.0.1:9",
            access_key_id="x",
            secret_access_key="y",  # type: ignore[arg-type]
            max_attempts=2,
            connect_timeout_s=0.5,
        ),
    )
    with pytest.raises(
        StoreUnavailableError, match=r"cannot reach the object store .*127\.0\.0\.1:9"
    ):
        S3ObjectStore.from_settings(dead).ensure_compliant()


def test_data_and_locks_survive_a_restart(
    stack_settings: Settings, store: S3ObjectStore, retain_until: datetime
) -> None:
    put, data = _locked(store, retain_until)
    assert seaweed.stop(stack_settings)
    seaweed.start(stack_settings)
    fresh = S3ObjectStore.from_settings(stack_settings)
    assert fresh.get(put.key, version_id=put.version_id) == data
    head = fresh.head(put.key, version_id=put.version_id)
    assert (head.lock.mode, head.lock.retain_until) == ("COMPLIANCE", retain_until)
    with pytest.raises(LockRefusedError):
        fresh.delete_version(put.key, version_id=put.version_id)


def test_listing_from_a_key_marker_reads_only_the_keys_after_it(
    store: S3ObjectStore, retain_until: datetime
) -> None:
    """The catalog's warm append lists from its newest manifest's key on: the store itself must
    skip the keys before the marker (else every append still pays for the whole listing)."""
    prefix = f"test/marker/{secrets.token_hex(8)}/"
    keys = [f"{prefix}{n:010d}.parquet" for n in (1, 2, 10)]  # zero-padded: key order = number
    for key in keys:
        store.put_locked(key, secrets.token_bytes(64), retain_until=retain_until)
    store.client.put_object(Bucket=store.bucket, Key=keys[2], Body=b"a second version")
    listed = [v.key for v in store.list_versions(prefix, start_after=keys[0])]
    assert listed == [keys[1], keys[2], keys[2]]
    assert [v.key for v in store.list_versions(prefix, start_after=keys[2])] == []
    raw = store.client.list_object_versions(Bucket=store.bucket, Prefix=prefix, KeyMarker=keys[0])
    assert keys[0] not in {v["Key"] for v in raw.get("Versions", [])}

"""The portal works on an S3 identity of its own: it reads records and writes only the audit log's
and the access register's segments. A compromised portal process (its keys are in its memory)
must not be able to delete, overwrite or shadow a record, nor write anywhere else."""

from __future__ import annotations

import secrets
import stat
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from archive.audit import AUDIT_PREFIX
from archive.store import DevCredentials, S3ObjectStore
from infra.seaweed_security import security_dir
from infra.settings import AppSettings as Settings
from portal import exports
from retrieval import AuthenticationError
from retrieval.access import ACCESS_PREFIX


def _until() -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)


def _forbidden(call: Callable[[], object]) -> None:
    with pytest.raises(ClientError) as info:
        call()
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_portal_identity_reads_records_but_cannot_delete_overwrite_or_write_elsewhere(
    settings: Settings,
) -> None:
    admin = S3ObjectStore.from_settings(settings)
    data = secrets.token_bytes(1024)
    record = admin.put_locked(
        f"records/v1/portal/{secrets.token_hex(6)}", data, retain_until=_until()
    )
    portal = S3ObjectStore.from_settings(settings, role="portal")
    c, b = portal.client, portal.bucket

    assert portal.get(record.key, version_id=record.version_id) == data
    _forbidden(lambda: c.delete_object(Bucket=b, Key=record.key, VersionId=record.version_id))
    _forbidden(lambda: c.delete_object(Bucket=b, Key=record.key))  # a delete marker hides it
    _forbidden(lambda: c.put_object(Bucket=b, Key=record.key, Body=b"forged"))
    _forbidden(lambda: c.put_object(Bucket=b, Key="catalog/sealed/v1/manifests/x", Body=b"x"))
    _forbidden(lambda: c.put_object(Bucket=b, Key="retention/sealed/v1/events/x", Body=b"x"))
    _forbidden(lambda: c.delete_bucket(Bucket=b))
    assert [v.version_id for v in admin.list_versions(record.key)] == [record.version_id]

    for prefix in (AUDIT_PREFIX, ACCESS_PREFIX):
        put = portal.put_locked(f"{prefix}t-{secrets.token_hex(4)}", b"seg", retain_until=_until())
        assert admin.get(put.key, version_id=put.version_id) == b"seg"


def test_the_portal_appends_its_audit_log_on_its_own_identity(settings: Settings) -> None:
    retrieval = exports.open_retrieval(settings)
    try:
        with pytest.raises(AuthenticationError):
            retrieval.sign_in("nobody.here", "not the password", now=datetime.now(UTC))
    finally:
        retrieval.index.close()
    admin = S3ObjectStore.from_settings(settings)
    listed = admin.client.list_objects_v2(Bucket=admin.bucket, Prefix=AUDIT_PREFIX)
    assert listed.get("KeyCount", 0) >= 1, "the refused sign-in was not audited to the bucket"


def test_stack_secrets_are_private(stack_settings: Settings) -> None:
    sea = stack_settings.seaweedfs_dir
    creds = DevCredentials.load(sea)
    assert creds.portal is not None
    assert creds.portal.access_key_id not in {creds.admin.access_key_id, creds.reader.access_key_id}
    files = [DevCredentials.path(sea), sea / "s3.json", *security_dir(sea).iterdir()]
    assert any(f.name == "security.toml" for f in files)
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f.name
    assert stat.S_IMODE(security_dir(sea).stat().st_mode) == 0o700

"""Nothing readable leaves the machine: no object body or key holds a marker or a patient name."""

from __future__ import annotations

import secrets
import unicodedata
from datetime import datetime

import pytest

from archive.seal import LocalKeyring, ObjectIdentity
from archive.store import S3ObjectStore, deposit, record_key
from infra.settings import AppSettings as Settings

pytestmark = pytest.mark.integration

PATIENT = "Nguyễn Thị Hồng Nhung"


def test_no_object_or_key_contains_a_marker_or_a_name(
    stack_settings: Settings, store: S3ObjectStore, retain_until: datetime
) -> None:
    keys = LocalKeyring.open(stack_settings.keyring_dir)
    marker = f"CONFIDENTIAL-MARKER-{secrets.token_hex(8)}"
    for i in range(5):
        record_id = f"{PATIENT}-{marker}-{i}"  # even a careless record id must not leak
        # Repetitive text compresses well: the marker must not survive as a literal either.
        document = (f"Họ tên: {PATIENT}\n{marker}\n" * 200).encode()
        identity = ObjectIdentity(
            store.bucket,
            record_key(facility="01001", token=keys.record_token(record_id)),
            record_id,
        )
        deposit(
            document,
            identity=identity,
            retain_until=retain_until,
            store=store,
            keys=keys,
            settings=stack_settings.seal,
        )

    needles = [marker.encode(), marker[-16:].encode()]
    for form in ("NFC", "NFD"):
        name = unicodedata.normalize(form, PATIENT)
        needles += [name.encode("utf-8"), name.encode("utf-16-le"), name.split()[-1].encode()]
    versions = [v for v in store.list_versions() if not v.is_delete_marker]
    assert versions
    for version in versions:
        assert marker not in version.key
        assert "Nguy" not in version.key
        body = store.get(version.key, version_id=version.version_id)
        for needle in needles:
            assert needle not in body, f"{version.key} holds readable PHI or a marker"

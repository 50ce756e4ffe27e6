"""The audit log on the real bucket: segments are COMPLIANCE-locked and undeletable, and a local
log rewritten consistently is still caught by its locked copies."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest

from archive import wiring
from archive.audit import AUDIT_PREFIX, AuditEvent, AuditLog, audit_dir
from archive.core.errors import LockRefusedError
from archive.seal import MAGIC
from infra.settings import AppSettings as Settings

pytestmark = pytest.mark.integration


def _event(n: int) -> AuditEvent:
    return AuditEvent(
        actor="verifier",
        role="system",
        action="verify.run",
        recorded=datetime.now(UTC),
        entities=(("run", f"run-{n}"),),
        detail={"checked": n},
    )


def test_segments_are_locked_and_the_bucket_catches_a_local_rewrite(settings: Settings) -> None:
    store = wiring.open_store(settings)
    log = AuditLog.for_settings(settings, store)
    for n in range(3):
        log.append(_event(n))
        log.flush()
    assert log.verify_chain().passed
    versions = list(store.list_versions(AUDIT_PREFIX))
    assert len(versions) == 3
    for version in versions:  # sealed: the bucket never sees an event in clear
        raw = store.get(version.key, version_id=version.version_id)
        assert raw.startswith(MAGIC)
        assert b"verify.run" not in raw
    head = store.head(versions[0].key, version_id=versions[0].version_id)
    assert head.lock.mode == "COMPLIANCE"
    with pytest.raises(LockRefusedError):
        store.delete_version(versions[0].key, version_id=versions[0].version_id)

    # Rewrite the newest event and move HEAD to it, without the keyring (HEAD as releases
    # before sealing wrote it): the local chain checks out...
    segment = audit_dir(settings) / "segments" / "0000000003.jsonl"
    record = json.loads(segment.read_bytes())
    record["detail"]["checked"] = 99
    forged = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    segment.write_bytes(forged + b"\n")
    head_file = audit_dir(settings) / "HEAD"
    head_file.write_bytes(
        json.dumps(
            {"seq": 3, "sha256": hashlib.sha256(forged).hexdigest()},
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
    )
    assert log.verify_chain(against_bucket=False).passed
    # ...but not against its locked copy, whose name carries the segment's keyed digest.
    report = log.verify_chain()
    assert not report.passed
    assert "locked copy" in report.reason

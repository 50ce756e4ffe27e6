"""The second site, checked object by object against the catalog and the primary.

Run once per verification run when a replica is configured, whatever the mode (a sample would
miss a lost copy): one HEAD per record at the replica, and per other object (catalog copies,
audit and register segments, quarantine entries) one HEAD at each site.

- ``replica.missing``  the replica has no live copy of an object the primary holds
- ``replica.differs``  the replica's copy is not the catalog's SHA-256 (records) or the primary's
- ``replica.unlocked`` the copy is not under COMPLIANCE until at least the primary's retain-until,
                       or a held record's copy is not under legal hold
- ``replica.unreachable`` the replica site did not answer (after botocore's retries): the run
                       goes on without it and says so (indeterminate: nothing could be compared)
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from archive.core.errors import StoreError
from archive.store import (
    COMPLIANCE,
    RECORDS_PREFIX,
    UNREPLICATED_PREFIXES,
    ObjectHead,
    ObjectStore,
    sha256_hex,
)
from verification.catalog_index import Newest
from verification.config import HoldSet
from verification.inventory import Finding
from verification.results import CheckResult

REPLICA = "replica"
_SKIP = UNREPLICATED_PREFIXES  # coordination objects: no copy at the other site


def compare_sites(
    records: Iterable[Newest], primary: ObjectStore, replica: ObjectStore, *, holds: HoldSet
) -> tuple[CheckResult, tuple[Finding, ...]]:
    """``records``: each catalogued key's newest row, once (:meth:`CatalogIndex.newest`)."""
    found: list[Finding] = []
    count = 0
    try:
        for row in records:
            count += 1
            want_hold = holds.expected_hold(row.encounter_id)
            found += _check(replica, row.object_key, row.sealed_sha256, row.retain_until, want_hold)
    except StoreError as e:
        return unreachable(e), (*found, unreachable_finding(e))
    try:
        for v in primary.list_versions(""):
            if not v.is_latest or v.is_delete_marker or v.key.startswith((RECORDS_PREFIX, *_SKIP)):
                continue
            head = primary.head(v.key, version_id=v.version_id)
            if head.sha256 is None:
                head_sha = sha256_hex(primary.get(v.key, version_id=v.version_id))
            else:
                head_sha = head.sha256
            try:
                until, hold = head.lock.retain_until, head.lock.legal_hold
                found += _check(replica, v.key, head_sha, until, hold)
            except StoreError as e:
                return unreachable(e), (*found, unreachable_finding(e))
    except StoreError as e:
        return CheckResult.indeterminate(
            REPLICA, "replica.unavailable", f"a site could not be read ({type(e).__name__})"
        ), tuple(found)
    return _result(found, count), tuple(found)


def unreachable(error: Exception) -> CheckResult:
    return CheckResult.indeterminate(
        REPLICA,
        "replica.unreachable",
        f"the replica site did not answer ({type(error).__name__}): its copies were not compared",
    )


def unreachable_finding(error: Exception) -> Finding:
    return Finding(
        "replica.unreachable", "", "", f"the replica site did not answer ({type(error).__name__})"
    )


def _check(
    replica: ObjectStore, key: str, sha256: str, until: datetime | None, hold: bool
) -> list[Finding]:
    copy = replica.latest(key)
    if copy is None:
        return [Finding("replica.missing", key, "", "the replica has no copy")]
    if _sha(replica, copy) != sha256:
        return [Finding("replica.differs", key, copy.version_id, "the replica's bytes differ")]
    lock = copy.lock
    if lock.mode != COMPLIANCE or lock.retain_until is None:
        return [Finding("replica.unlocked", key, copy.version_id, "no COMPLIANCE lock")]
    if until is not None and lock.retain_until < until:
        return [Finding("replica.unlocked", key, copy.version_id, "locked for less long")]
    if hold and not lock.legal_hold:
        return [Finding("replica.unlocked", key, copy.version_id, "the legal hold is missing")]
    return []


def _sha(store: ObjectStore, head: ObjectHead) -> str:
    if head.sha256 is not None:
        return head.sha256
    return sha256_hex(store.get(head.key, version_id=head.version_id))


def _result(found: list[Finding], records: int) -> CheckResult:
    if not found:
        return CheckResult.passed(
            REPLICA, f"{records} record(s) and every other object at both sites, same bytes, locked"
        )
    codes = sorted({f.reason_code for f in found})
    return CheckResult.failed(
        REPLICA, codes[0], f"{len(found)} replica finding(s): {', '.join(codes)}"
    )

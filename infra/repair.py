"""``emr-archive repair``: restore the site that lost objects from the other, then audit it.

The copying itself is :func:`archive.store.repair` (no key: it cannot decrypt). Here: the two
sites from the settings, the catalog's SHA-256 of every record that must still exist (records
destroyed by disposition are expected to be gone at both), and the audit event.
"""

from __future__ import annotations

from datetime import UTC, datetime

from archive.audit import AuditEvent, AuditLog
from archive.audit.log import LEGACY_AUDIT_PREFIX
from archive.catalog import LEGACY_BUCKET_PREFIX, Catalog
from archive.core.errors import ConfigError, StoreError
from archive.core.settings import Settings
from archive.store import S3ObjectStore, Site, open_sites
from archive.store.repair import THREADS, RepairReport, repair
from retention.parts import lock_expectations
from retention.proposals import LEGACY_PROPOSALS_PREFIX
from retention.register import LEGACY_REGISTER_PREFIX

# Written in clear by releases before metadata was sealed: no envelope to check the shape of.
PLAIN_PREFIXES = (
    LEGACY_BUCKET_PREFIX,
    LEGACY_AUDIT_PREFIX,
    LEGACY_REGISTER_PREFIX,
    LEGACY_PROPOSALS_PREFIX,
)


def repair_site(
    settings: Settings, *, site: Site, plan_only: bool = False, threads: int = THREADS
) -> RepairReport:
    """Copy to ``site`` what it lacks from the other site (nothing written with ``plan_only``),
    ``threads`` objects at a time."""
    if not settings.replica.enabled:
        raise ConfigError("no replica site is configured ([replica] enabled = false): no repair")
    if site == "primary":
        # The catalog names the primary's version ids, which a restored copy cannot keep.
        raise StoreError(
            "restoring the primary from the replica would give every object a new version id "
            "that the catalog does not name; this release repairs the replica only. Keep the "
            "replica as it is (every record stays locked and readable there), pause the nightly "
            "deployment, and restore the primary's own storage if you can (see the README's "
            "Durability section)"
        )
    source = S3ObjectStore.from_settings(settings, site="primary")
    target = S3ObjectStore.from_settings(settings, site=site)
    target.ensure_compliant()
    return repair(
        source,
        target,
        catalogued=catalogued_digests(settings),
        plain_prefixes=PLAIN_PREFIXES,
        plan_only=plan_only,
        threads=threads,
    )


def catalogued_digests(settings: Settings) -> dict[str, str]:
    """Record key -> the catalog's SHA-256 of its sealed bytes, for every record not destroyed."""
    catalog = Catalog.open(settings.catalog_dir)
    _, destroyed = lock_expectations(settings)
    table = catalog.rows().select(["object_key", "version_id", "sealed_sha256"]).to_pylist()
    return {
        r["object_key"]: r["sealed_sha256"]
        for r in table
        if (r["object_key"], r["version_id"]) not in destroyed
    }


def audit_repair(settings: Settings, report: RepairReport, *, site: Site) -> None:
    """One audit event (written at both sites) saying what the repair restored and refused."""
    log = AuditLog.for_settings(settings, open_sites(settings))
    log.append(
        AuditEvent(
            actor="repair",
            role="system",
            action="store.repair",
            recorded=datetime.now(UTC),
            outcome="success" if report.ok else "failure",
            entities=(("site", site),),
            reason=",".join(sorted({r.reason_code for r in report.refused})) or None,
            detail={
                "checked": report.checked,
                "copied": len(report.copied),
                "relocked": len(report.relocked),
                "held": len(report.held),
                "refused": len(report.refused),
                "bytes": report.bytes_copied,
            },
        )
    )
    log.flush()

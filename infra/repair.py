"""``emr-archive repair``: restore the site that lost objects from the other, then audit it.

The copying itself is :func:`archive.store.repair` (no key: it cannot decrypt). Here: the two
sites from the settings, the catalog's SHA-256 of every record that must still exist (records
destroyed by disposition are expected to be gone at both), the re-homed map when the primary is
repaired (:mod:`archive.store.rehomed`: its copies have new version ids), and the audit event.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from archive.audit import AuditEvent, AuditLog
from archive.audit.log import LEGACY_AUDIT_PREFIX
from archive.catalog import LEGACY_BUCKET_PREFIX, Catalog
from archive.core.errors import ConfigError
from archive.core.settings import Settings
from archive.store import ObjectStore, ReplicatedStore, S3ObjectStore, Site, open_sites
from archive.store.rehomed import REHOMED_PREFIX, Rehoming, append_map, read_map
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
    REHOMED_PREFIX,  # the re-homed map: written by the keyless repair, in clear (no PHI)
)


def repair_site(
    settings: Settings, *, site: Site, plan_only: bool = False, threads: int = THREADS
) -> RepairReport:
    """Copy to ``site`` what it lacks from the other site (nothing written with ``plan_only``),
    ``threads`` objects at a time. Repairing the primary also re-homes the catalogued version
    ids of the records it restored (:mod:`archive.store.rehomed`)."""
    if not settings.replica.enabled:
        raise ConfigError("no replica site is configured ([replica] enabled = false): no repair")
    other: Site = "replica" if site == "primary" else "primary"
    source = S3ObjectStore.from_settings(settings, site=other)
    target = S3ObjectStore.from_settings(settings, site=site)
    target.ensure_compliant()
    versions = catalogued_versions(settings)
    report = repair(
        source,
        target,
        catalogued={key: sha for key, (_, sha) in versions.items()},
        plain_prefixes=PLAIN_PREFIXES,
        plan_only=plan_only,
        threads=threads,
    )
    if site == "primary" and not plan_only:
        both = ReplicatedStore(primary=target, replica=source)
        rehomed, segments = rehome(both, target, versions, report)
        report = replace(report, rehomed=rehomed, rehomed_segments=segments)
    return report


def rehome(
    both: ObjectStore,
    primary: ObjectStore,
    versions: dict[str, tuple[str, str]],
    report: RepairReport,
) -> tuple[int, int]:
    """Chain an entry into the re-homed map (at both sites) for every catalogued record the
    primary now holds under another version id than the catalog's, unless the map already
    names that one: (entries written, segments written). A rerun after a crash between the
    copies and the map finds the copies in place and writes only the missing entries."""
    rmap = read_map(primary)
    entries = []
    for key, restored, until in report.placed:
        catalogued, sha = versions[key]
        known = rmap.get(key, catalogued)
        if restored == catalogued or (known is not None and known.restored == restored):
            continue
        entries.append((Rehoming(key, catalogued, restored, sha), until))
    written = append_map(both, rmap, entries, now=datetime.now(UTC))
    return len(entries), len(written)


def catalogued_versions(settings: Settings) -> dict[str, tuple[str, str]]:
    """Record key -> (the catalog's version id, its SHA-256 of the sealed bytes), for every
    record not destroyed."""
    catalog = Catalog.open(settings.catalog_dir)
    _, destroyed = lock_expectations(settings)
    table = catalog.rows().select(["object_key", "version_id", "sealed_sha256"]).to_pylist()
    return {
        r["object_key"]: (r["version_id"], r["sealed_sha256"])
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
                "rehomed": report.rehomed,
                "rehomed_segments": report.rehomed_segments,
            },
        )
    )
    log.flush()

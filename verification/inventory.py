"""Archive-wide checks: the catalog's chain and its bucket copies, and the bucket's inventory.

Run once per verification run, whatever the mode: they are cheap (one listing, one GET per
manifest: the copies are sealed, so the store's checksum is not the manifest's) and a sample
cannot find an orphan.

- ``catalog.chain``   the local manifests chain (opened by :meth:`Catalog.open`, which hashes every
                      manifest) and each equals its locked copy in the bucket (opened through a
                      :class:`archive.store.SealedStore`), which holds no more
- ``inventory``       every object version under ``records/`` is catalogued (else an *orphan*, or a
                      *newer version* written over a catalogued key), no catalogued key is hidden
                      by a delete marker, and every catalogued version exists (rows not verified
                      one by one in this run; the record checks report the others). With the
                      re-homed map refused, a record it would have found is ``rehomed.broken``
                      (:mod:`verification.rehomed`)

Read only: unlike :meth:`Catalog.sync`, nothing is uploaded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from archive.catalog import BUCKET_PREFIX, Catalog
from archive.core.errors import CatalogError, ChainBrokenError, ManifestCorruptError, SealError
from archive.store import ObjectStore, ObjectVersion, sha256_hex
from verification.catalog_index import CatalogIndex
from verification.results import CheckResult

CHAIN = "catalog.chain"
INVENTORY = "inventory"


@dataclass(frozen=True, slots=True)
class Finding:
    """One inventory problem, for the report (keys and versions only)."""

    reason_code: str
    object_key: str
    version_id: str
    message: str


def open_catalog(directory: Path) -> tuple[Catalog | None, CheckResult]:
    """Open and verify the chain; a broken chain fails and no row of it is trusted."""
    try:
        catalog = Catalog.open(directory)
    except ChainBrokenError as e:
        return None, CheckResult.failed(CHAIN, "catalog.chain_broken", str(e))
    except ManifestCorruptError as e:
        return None, CheckResult.failed(CHAIN, "catalog.manifest_corrupt", str(e))
    except CatalogError as e:
        return None, CheckResult.indeterminate(CHAIN, "catalog.unavailable", str(e))
    return catalog, CheckResult.passed(
        CHAIN, f"{len(catalog.manifests)} manifest(s) chain intact" + _pending(catalog)
    )


def _pending(catalog: Catalog) -> str:
    return " (the newest is pending: HEAD not yet updated)" if catalog.head_pending else ""


def compare_bucket_copies(catalog: Catalog, store: ObjectStore) -> CheckResult:
    """Each local manifest equals its locked bucket copy; the bucket holds no extra manifest
    (which would mean the local chain was cut short and HEAD rewritten). ``store`` opens the
    sealed copies (a SealedStore): the manifest's sha256 is compared with the opened bytes."""
    copies = {v.key: v for v in store.list_versions(BUCKET_PREFIX) if not v.is_delete_marker}
    for info in catalog.manifests:
        head = store.latest(info.key)
        if head is None:
            return _no_copy(info.key, newest=info is catalog.manifests[-1])
        try:
            copy = store.get(info.key, version_id=head.version_id)
        except SealError as e:
            return CheckResult.failed(
                CHAIN,
                "catalog.copy_unreadable",
                f"the locked bucket copy of {info.name} does not open ({type(e).__name__}): "
                "it is damaged or was not written by this archive",
            )
        if sha256_hex(copy) != info.sha256:
            return CheckResult.failed(
                CHAIN,
                "catalog.copy_mismatch",
                f"local manifest {info.name} differs from its locked bucket copy",
            )
    extra = sorted(set(copies) - {m.key for m in catalog.manifests})
    if extra:
        return CheckResult.failed(
            CHAIN,
            "catalog.bucket_ahead",
            f"the bucket holds {extra[0]} (and {len(extra) - 1} more) that the local catalog "
            "lacks: it was cut short; rebuild it from the bucket (emr-archive catalog rebuild)",
        )
    return CheckResult.passed(
        CHAIN, f"{len(catalog.manifests)} manifest(s) chain intact and equal their bucket copies"
    )


def _no_copy(key: str, *, newest: bool) -> CheckResult:
    """A newest manifest may lack its copy after a crash (the next archive run or `emr-archive
    catalog verify` uploads it): unprotected, so not a pass, but not proven wrong either."""
    message = f"{key} has no locked copy in the bucket"
    if newest:
        return CheckResult.indeterminate(
            CHAIN, "catalog.copy_missing", message + ": run `emr-archive catalog verify` to sync"
        )
    return CheckResult.failed(CHAIN, "catalog.copy_missing", message)


def inventory(
    catalogued: Iterable[tuple[str, str]],
    versions: Iterable[ObjectVersion],
    *,
    verified: set[tuple[str, str]],
    map_refused: bool = False,
) -> tuple[CheckResult, tuple[Finding, ...]]:
    """:func:`compare_inventory` of pairs at hand (a run streams the catalog into the index)."""
    pairs = list(catalogued)
    with CatalogIndex() as index:
        table = pa.table(
            {"object_key": [k for k, _ in pairs], "version_id": [v for _, v in pairs]},
            schema=pa.schema([("object_key", pa.string()), ("version_id", pa.string())]),
        )
        index.add(table, pa.array([p in verified for p in pairs], pa.bool_()))
        index.add_listing(versions)
        return compare_inventory(index, map_refused=map_refused)


def compare_inventory(
    index: CatalogIndex, *, map_refused: bool = False
) -> tuple[CheckResult, tuple[Finding, ...]]:
    """Compare the catalog's (key, version) pairs with the bucket's versions under records/ (both
    in ``index``); pairs the run verifies one by one are not reported missing here (the record
    checks do). ``map_refused``: the listing is the bare primary's, the re-homed map refused."""
    found: list[Finding] = []
    for v in index.listed():
        pair = (v.object_key, v.version_id)
        if v.is_delete_marker and v.key_catalogued:
            found.append(
                Finding(
                    "inventory.delete_marker", *pair, "a delete marker hides a catalogued record"
                )
            )
        elif not v.is_delete_marker and not v.catalogued:
            code, what = (
                ("inventory.newer_version", "a version no catalog row names, over a catalogued key")
                if v.key_catalogued
                else ("inventory.orphan", "an object no catalog row names")
            )
            found.append(Finding(code, *pair, what))
    for pair in index.missing():
        found.append(
            Finding("inventory.missing", *pair, "a catalogued version is not in the bucket")
        )
    if map_refused:
        found = _unmapped(found, index.unlisted_keys())
    return _inventory_result(found, index.pair_count()), tuple(found)


def _unmapped(found: list[Finding], gone: set[str]) -> list[Finding]:
    """Findings on keys whose catalogued version the primary no longer holds: restored by a
    repair, for all one can tell without the map, so the map's finding, not an intrusion's."""
    out = []
    recoded = ("inventory.missing", "inventory.newer_version")
    for f in found:
        if f.object_key in gone and f.reason_code in recoded:
            what = (
                "its catalogued version is not at the primary and the re-homed map is refused"
                if f.reason_code == "inventory.missing"
                else "a version only the refused re-homed map could account for"
            )
            f = Finding("rehomed.broken", f.object_key, f.version_id, what)
        out.append(f)
    return out


def _inventory_result(found: list[Finding], catalogued: int) -> CheckResult:
    if not found:
        return CheckResult.passed(
            INVENTORY, f"{catalogued} catalogued version(s); no orphan, newer or missing version"
        )
    codes = sorted({f.reason_code for f in found})
    return CheckResult.failed(
        INVENTORY, codes[0], f"{len(found)} inventory finding(s): {', '.join(codes)}"
    )

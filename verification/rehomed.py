"""The re-homed map as an archive-wide check: a broken map is a finding, never a stop.

After ``emr-archive repair --site primary`` the records the primary lost are read through the
re-homed map (:mod:`archive.store.rehomed`). When that map is refused (a segment out of chain,
unlocked, altered, a stranger under its prefix) nothing it names can be trusted, but the rest of
the archive can: the run goes on.

- ``rehomed``               once per run when the primary was ever repaired: every segment is
                            locked, in sequence and in chain (``rehomed.broken`` otherwise)
- ``object.rehomed_broken`` (record check) the record's catalogued version is not at the primary
                            and the map that would name its restored copy, or the map's entry
                            for it, is refused
- ``rehomed.broken``        (inventory finding) the same for a record not verified one by one in
                            this run, and a version over such a record's key that only the
                            refused map could account for

Listings go to the bare primary then: its restored versions cannot be named by catalogued id.
"""

from __future__ import annotations

from archive.core.errors import RehomedError
from archive.store import ObjectStore, RehomedStore
from verification.results import CheckResult

REHOMED = "rehomed"
BROKEN = "rehomed.broken"


def check_rehomed(store: ObjectStore) -> tuple[CheckResult | None, ObjectStore]:
    """The map's check (None when no primary was ever repaired, or ``store`` reads no map) and
    the store to list the bucket through."""
    if not isinstance(store, RehomedStore):
        return None, store
    try:
        rmap = store.rehomed_map()
    except RehomedError as e:
        return CheckResult.failed(
            REHOMED,
            BROKEN,
            f"the re-homed map is refused ({e}); records restored by a primary repair cannot "
            "be read until it is whole, every other record is verified",
        ), store.inner
    if rmap.seq == 0:
        return None, store
    return CheckResult.passed(
        REHOMED,
        f"{len(rmap.entries)} restored version(s) in {rmap.seq} segment(s), locked and chained",
    ), store

"""One catalog writer on its own "machine" (its own local directory), appending numbered runs to
the shared bucket: ``python -m tests.support.catalog_writer NAME FIRST COUNT [--barrier DIR
--writers N] [--die-at STEP]``, settings from the environment
(:func:`tests.support.evidence_crash.child_env`).

Run ``NAME-k`` (k = FIRST .. FIRST+COUNT-1) holds rows :func:`row_base` onwards, so every row of
every writer and run is distinct and a rerun appends the same rows. ``--barrier``: every writer
waits there for the others right before its first claim, so that they all claim manifest ``n``
at once and all but one must rebase. ``--die-at`` kills this process (SIGKILL) in its second
append: ``claim`` just before the conditional create, ``claimed`` right after it (nothing local
yet), ``head`` after the local manifest, before HEAD. Prints the claims it lost, one per line.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from archive.catalog import BUCKET_PREFIX, Catalog
from archive.core.errors import ObjectConflictError
from archive.core.settings import Settings
from archive.store import S3ObjectStore, SealedStore
from tests.support.catalog import make_rows

ROWS = 3
RETAIN = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)


def row_base(name: str, k: int) -> int:
    """First row number of run ``name-k``: disjoint per writer (names a, b, c, ...) and run."""
    return (ord(name[0]) - ord("a") + 1) * 100_000 + k * 100


def append(catalog: Catalog, store: Any, name: str, k: int) -> None:
    run_id = f"{name}-{k}"
    rows = make_rows(row_base(name, k), ROWS, run_id)
    catalog.append(rows, run_id=run_id, now=datetime.now(UTC), store=store, retain_until=RETAIN)


def sealed_store(settings: Settings) -> SealedStore:
    return SealedStore.for_settings(settings, S3ObjectStore.from_settings(settings))


def _hook_claims(
    store: SealedStore, before: Callable[[int], None], after: Callable[[], None]
) -> None:
    original = store.put_locked
    claims = 0

    @functools.wraps(original)
    def put_locked(key: str, data: bytes, *, retain_until: datetime, **kw: Any) -> Any:
        nonlocal claims
        if not key.startswith(BUCKET_PREFIX) or store.inner.latest(key) is not None:
            return original(key, data, retain_until=retain_until, **kw)  # a re-upload check
        claims += 1
        before(claims)
        try:
            result = original(key, data, retain_until=retain_until, **kw)
        except ObjectConflictError:
            print("lost", key, flush=True)
            raise
        after()
        return result

    store.put_locked = put_locked  # type: ignore[method-assign]


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("first", type=int)
    parser.add_argument("count", type=int)
    parser.add_argument("--barrier", type=Path)
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--die-at", choices=("claim", "claimed", "head"))
    args = parser.parse_args()
    settings = Settings()
    store = sealed_store(settings)
    catalog = Catalog.open(settings.catalog_dir, create=True)
    state = {"append": 0}

    def before(n: int) -> None:
        if args.barrier is not None and n == 1:
            (args.barrier / args.name).touch()
            while len(list(args.barrier.iterdir())) < args.writers:
                time.sleep(0.005)
        if args.die_at == "claim" and state["append"] == 2:
            _die()

    def after() -> None:
        if args.die_at == "claimed" and state["append"] == 2:
            _die()

    _hook_claims(store, before, after)
    if args.die_at == "head":
        import archive.catalog.manifests as manifests

        original = manifests.write_head  # type: ignore[attr-defined]

        def write_head(directory: Path, newest: Any) -> None:
            if newest.run_id == f"{args.name}-2":  # its own claim, not a pull of others'
                _die()
            original(directory, newest)

        manifests.write_head = write_head  # type: ignore[attr-defined]
    for k in range(args.first, args.first + args.count):
        state["append"] += 1
        append(catalog, store, args.name, k)


if __name__ == "__main__":
    main()

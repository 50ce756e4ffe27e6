"""Shared bench helpers: a throwaway embedded stack and a plain timing table."""

from __future__ import annotations

import contextlib
import resource
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from infra.ports import throwaway_settings
from infra.settings import AppSettings as Settings


@contextlib.contextmanager
def throwaway_stack(*, full: bool = False, replica: bool = False) -> Iterator[Settings]:
    """SeaweedFS (and with ``full`` the PKI service and keyring; with ``replica`` a second
    SeaweedFS as the replica site) on free ports in a temp dir."""
    from archive.core.settings import ReplicaSettings
    from infra import seaweed, stack

    with tempfile.TemporaryDirectory(prefix="emr-bench-") as tmp:
        settings = throwaway_settings(Path(tmp), replica=ReplicaSettings(enabled=replica))
        try:
            if full:
                stack.up(settings)
            else:
                seaweed.start(settings)
            yield settings
        finally:
            stack.down(settings)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)

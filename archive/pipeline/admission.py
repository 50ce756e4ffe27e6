"""Which exports a run may read: only those under the configured source roots.

Whoever can start a run (the Prefect API, a shell on the archive's account) chooses its source,
and the hospital key then signs and locks what it reads for decades. So the source is checked
first, before the run lock, the store or the signer are touched: symlinks and ``..`` are resolved,
and a source outside every root is refused and audited. The audit event names the path only by
its SHA-256 digest: a hostile path may carry a patient's name.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

from archive.audit import AuditEvent, AuditLog
from archive.core.errors import ArchiveError, SourceOutsideRootsError
from archive.core.settings import Settings
from archive.store import open_sites

REFUSED = "archive.run.refused"
REASON = "source outside the configured roots"


def source_roots(settings: Settings) -> tuple[Path, ...]:
    """The configured roots; by default the configured source directory and the data dir's
    ``exports`` (the archive account's own, 0700)."""
    if settings.archive.source_roots:
        return settings.archive.source_roots
    default = (settings.archive.source_dir,) if settings.archive.source_dir else ()
    return (*default, settings.exports_dir)


def admit_source(settings: Settings, source: Path, *, run_id: str | None, now: datetime) -> Path:
    """``source`` resolved, when it lies under a root; otherwise audit the refusal and raise
    :class:`SourceOutsideRootsError`. Read the resolved path afterwards, not ``source``: a
    symlink could be pointed elsewhere between the check and the reads. ``run_id`` is None for a
    check before a run exists (the command line's, which refuses without a flow run)."""
    resolved = source.resolve()
    if any(resolved.is_relative_to(root.resolve()) for root in source_roots(settings)):
        return resolved
    digest = hashlib.sha256(str(resolved).encode("utf-8")).hexdigest()
    message = (
        f"source refused (path sha256 {digest[:16]}): it is outside the configured source "
        "roots; put the export under one of them or add its directory to "
        "EMR_ARCHIVE_ARCHIVE__SOURCE_ROOTS"
    )
    try:
        _audit(settings, run_id=run_id, digest=digest, now=now)
    except ArchiveError as e:
        # Still refused; the operator learns the refusal is not on record.
        raise SourceOutsideRootsError(f"{message} (and not audited: {type(e).__name__})") from e
    raise SourceOutsideRootsError(message)


def _audit(settings: Settings, *, run_id: str | None, digest: str, now: datetime) -> None:
    log = AuditLog.for_settings(settings, open_sites(settings))
    log.append(
        AuditEvent(
            actor="nightly-archive",
            role="system",
            action=REFUSED,
            recorded=now,
            outcome="failure",
            entities=(("run", run_id),) if run_id else (),
            reason=REASON,
            detail={"source_sha256": digest},
        )
    )
    log.flush(now=now)

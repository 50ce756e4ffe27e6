"""Dossier exports for the portal, built in worker processes.

Why processes: ``bagit`` changes the process's working directory while it writes a bag, which
would pull the ground from under every other request thread (the settings' ``data_dir`` may be
relative). A worker process also keeps a large patient dossier from stalling the pages.

Each worker opens its own :class:`Retrieval` once. It is handed the caller's session token, not
an identity: it authenticates the token itself (a session logged out or an account disabled
while the export waited is refused), then authorises and audits the export, checking grants at
the moment the documents are read. The zip is written in a
fresh 0700 directory under ``export_dir``; the portal streams it and then deletes it, so no
decrypted dossier stays on the server (:func:`discard`). Exports left by a crash are swept at
start-up (:func:`sweep`).
"""

from __future__ import annotations

import multiprocessing
import os
import secrets
import shutil
from concurrent.futures import Executor, ProcessPoolExecutor
from datetime import datetime
from pathlib import Path

from archive import wiring
from portal.settings import PortalAppSettings as Settings
from retrieval import ExportResult, Retrieval

_worker: Retrieval | None = None


def export_dir(settings: Settings) -> Path:
    return settings.portal.export_dir or settings.data_dir / "portal" / "exports"


def open_pool(settings: Settings) -> Executor:
    """Spawned workers (no fork of the web server's threads and sockets)."""
    return ProcessPoolExecutor(
        max_workers=settings.portal.export_workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init,
        initargs=(settings,),
    )


def open_retrieval(settings: Settings) -> Retrieval:
    """Retrieval on the portal's own S3 identity: it reads records and may write only the audit
    log's and the access register's segments, so a compromised portal cannot touch a record."""
    return Retrieval.open(settings, store=wiring.open_store(settings, role="portal"))


def _init(settings: Settings) -> None:
    global _worker
    _worker = open_retrieval(settings)


def run_export(
    token: str,
    *,
    root: Path,
    now: datetime,
    encounter_id: str | None,
    patient_pseudonym: str | None,
) -> ExportResult:
    """In a worker: one export into a new private directory under ``root``."""
    if _worker is None:
        raise RuntimeError("run_export runs in a pool opened by open_pool")
    principal = _worker.authenticate(token, now=now)
    out = root / secrets.token_hex(8)
    out.mkdir(parents=True, mode=0o700)
    try:
        return _worker.export(
            principal,
            out_dir=out,
            now=now,
            encounter_id=encounter_id,
            patient_pseudonym=patient_pseudonym,
        )
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise


def discard(result_path: Path) -> None:
    """Remove a delivered export and its private directory."""
    shutil.rmtree(result_path.parent, ignore_errors=True)


def sweep(root: Path) -> int:
    """Delete exports a previous portal process left behind (crash mid-download)."""
    if not root.is_dir():
        root.mkdir(parents=True, mode=0o700)
        return 0
    os.chmod(root, 0o700)
    gone = 0
    for child in root.iterdir():
        shutil.rmtree(child, ignore_errors=True)
        gone += 1
    return gone

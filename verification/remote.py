"""Batches of records verified on another machine (a Dask worker, through Prefect).

The flow's process ships a :class:`VerifyContext` (the settings without the S3 secret keys, the
expected legal holds, the catalog's signers, the check set and the moment judged) and a list of
catalog rows; the worker builds its :class:`~verification.verifier.Verifier` once per run and
process (read-only store identity, keys opened from its own settings' paths, the S3 secret from
its own environment) and returns the :class:`RecordResult` values. The flow's process keeps
everything else: the archive-wide checks, the log, the reports and the one audit event.

A worker that cannot reach the store or open the keys raises a named
:class:`~archive.core.errors.WorkerUnavailableError` before verifying anything; the flow turns
that batch into :func:`unverified` results (indeterminate, the reason code named), never passes.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from archive import wiring
from archive.catalog import CatalogRow
from archive.core.errors import ArchiveError, KeyringError, WorkerKeysError, WorkerStoreError
from archive.core.settings import Settings
from archive.pipeline.batch import with_local_secrets, without_secrets
from archive.pipeline.worker_keys import keys_unavailable
from verification.config import HoldSet, VerificationSettings, read_settings
from verification.results import CheckResult, RecordResult
from verification.verifier import Verifier, archive_day
from verification.worker import build_verifier, check_set, environment, verify_rows

WORKER_CHECK = "worker"  # the check a batch's records get when no worker could verify them


class VerifyContext:
    """What every batch of a verification run shares; no secret in it. A plain class, not a
    dataclass: Prefect walks dataclass task arguments looking for futures, and the settings do
    not survive that (as :class:`archive.pipeline.batch.RunContext`)."""

    __slots__ = ("as_of", "checks", "holds", "run_id", "settings", "signers", "vsettings")

    def __init__(
        self,
        *,
        run_id: str,
        settings: Settings,
        vsettings: VerificationSettings,
        holds: HoldSet,
        checks: str,
        signers: frozenset[str],
        as_of: datetime | None,
    ) -> None:
        check_set(checks)  # an unknown set fails in the flow, not on every worker
        self.run_id = run_id
        self.settings = without_secrets(settings)
        self.vsettings = vsettings
        self.holds = holds
        self.checks = checks
        self.signers = signers
        self.as_of = as_of

    def __repr__(self) -> str:
        return f"VerifyContext(run_id={self.run_id!r})"


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifiedBatch:
    index: int
    worker: str  # which machine/process verified it (an address, never PHI)
    results: tuple[RecordResult, ...]


def verify_remote_batch(
    context: VerifyContext, rows: list[CatalogRow], *, index: int, now: datetime, worker: str
) -> VerifiedBatch:
    """Verify ``rows`` on this machine; raises :class:`WorkerUnavailableError` (before any
    record is read) when this machine cannot reach the store or open the keys."""
    verifier, threads, lock = _verifier_for(context)
    with lock:  # one batch at a time per process, on the verifier's own threads
        results = verify_rows(verifier, threads, rows, now)
    return VerifiedBatch(index=index, worker=worker, results=tuple(results))


def unverified(rows: list[CatalogRow], reason_code: str, message: str) -> list[RecordResult]:
    """The results of records no worker verified: indeterminate under ``reason_code``, so that
    the run's report names the reason and never counts them passed."""
    check = CheckResult.indeterminate(WORKER_CHECK, reason_code, message)
    return [
        RecordResult(
            encounter_id=row.encounter_id,
            patient_pseudonym=row.patient_pseudonym,
            object_key=row.object_key,
            version_id=row.version_id,
            archive_day=archive_day(row),
            checks=(check,),
            renewal=None,
            seconds=0.0,
        )
        for row in rows
    ]


# One verifier per process and run: the keyring, trust policy and S3 client are opened by the
# first batch of a run on this machine and reused by the next ones.
_VERIFIERS: dict[str, tuple[Verifier, ThreadPoolExecutor, threading.Lock]] = {}
_OPENING = threading.Lock()


def _verifier_for(context: VerifyContext) -> tuple[Verifier, ThreadPoolExecutor, threading.Lock]:
    with _OPENING:
        if context.run_id not in _VERIFIERS:
            for _, threads, _ in _VERIFIERS.values():  # an earlier run's (its settings differ)
                threads.shutdown(wait=False)
            _VERIFIERS.clear()
            verifier, threads = _open_verifier(context)
            _VERIFIERS[context.run_id] = (verifier, threads, threading.Lock())
        return _VERIFIERS[context.run_id]


def _open_verifier(context: VerifyContext) -> tuple[Verifier, ThreadPoolExecutor]:
    settings = with_local_secrets(context.settings)  # WorkerStoreError when it has none
    vsettings = context.vsettings
    try:
        # Listing is what the read-only identity may do and what verification needs first.
        store = wiring.open_store(read_settings(settings, vsettings), read_only=True)
        next(iter(store.list_versions("records/")), None)
    except (ArchiveError, OSError) as e:
        raise WorkerStoreError(
            f"this worker cannot read the store ({type(e).__name__}: {e}): give it the same S3 "
            "endpoint and its credentials (EMR_ARCHIVE_S3__SECRET_ACCESS_KEY)"
        ) from e
    try:
        env = environment(settings, vsettings, context.holds, context.signers, context.as_of)
    except KeyringError as e:  # opening the key-encryption keys: say which provider
        raise keys_unavailable(settings, e) from e
    except (ArchiveError, OSError) as e:
        raise WorkerKeysError(
            f"this worker cannot open the keys or the trust roots ({type(e).__name__}: {e}): "
            "give it the same keyring / KMS / token access and signer settings"
        ) from e
    return build_verifier(env, vsettings, context.checks)

"""The nightly run's and verification's batches on a Dask cluster, through Prefect's
``prefect-dask`` task runner.

Used when ``[cluster] scheduler_address`` is set (empty: the process pool of one machine). The
flow's process plans the batches as references (encounter ids, data hashes, a slice of discharge
times), submits one ``archive-batch-on-worker`` task per batch to the scheduler, and records what
comes back; it alone appends to the catalog and runs the evidence stage afterwards. Each worker
rereads its batch from the source and opens the keys, the signer and the store itself.

A batch whose worker cannot do it (no source, no store, no keys: a named error) or that the
cluster lost (a worker killed more often than Dask's ``allowed-failures``) is counted failed for
each of its records; the run ends Failed with the reason and the next run retries them, adopting
whatever the lost batch had already stored. A batch Dask reran on another worker after losing
one stores nothing twice (create-once keys; what was stored is adopted).

Verification ships catalog rows the same way (:func:`verify_on_cluster`): workers return the
records' results, the flow's process writes the log, the reports and the audit event. A batch no
worker could verify is reported indeterminate under its reason for each of its records.

Hash-tree renewal ships evidence documents (:class:`RehashOnCluster`): workers read, open and
hash the records and return their leaves; the flow's process asks the TSA once per tree and
writes every chain object.

Before any work, :func:`ensure_cluster` checks that the scheduler answers and has a worker: an
address nobody listens on would otherwise leave the run waiting on distributed's connect
timeouts, and a scheduler without workers would hold the batches forever.
"""

from __future__ import annotations

import itertools
import os
import queue
import socket
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any, Protocol, TypeVar

from distributed import CancelledError, Client, KilledWorker
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect_dask.task_runners import DaskTaskRunner

from archive.catalog import CatalogRow
from archive.core.errors import ClusterUnavailableError, WorkerUnavailableError
from archive.pipeline import ArchiveRun
from archive.pipeline.batch import BatchRef, BatchResult, RunContext, process_batch
from archive.pipeline.evidence_rehash import Document, Leaf
from archive.pipeline.evidence_rehash_remote import (
    DocumentRef,
    RehashContext,
    RehashedBatch,
    rehash_remote_batch,
)
from verification.remote import VerifiedBatch, VerifyContext, unverified, verify_remote_batch
from verification.run import VerificationRun

T = TypeVar("T")
F = TypeVar("F", bound="Completes")
MIN_IN_FLIGHT = 8  # batches submitted ahead of the one awaited, however few workers


@task(name="archive-batch-on-worker", cache_policy=NO_CACHE, persist_result=False)
def archive_batch_on_worker(context: RunContext, ref: BatchRef) -> BatchResult:
    return process_batch(context, ref, worker=_worker_name())


def archive_on_cluster(run: ArchiveRun, address: str) -> None:
    """Every batch of ``run`` on the Dask cluster at ``address``; outcomes recorded in ``run``."""
    refs = run.plan_refs()
    if not refs:
        return
    context = run.context()
    logger = get_run_logger()
    with _tasks_report_here(), DaskTaskRunner(address=address) as runner:
        # No quote()/opaque() here: prefect-dask 0.3.7 hands them to the task as nested tuples
        # (RunContext is a plain class so that nothing walks into the settings).
        futures = [
            runner.submit(archive_batch_on_worker, parameters={"context": context, "ref": ref})
            for ref in refs
        ]
        for ref, future in zip(refs, futures, strict=True):
            outcome = _outcome(future, BatchResult)
            if isinstance(outcome, BatchResult):
                run.absorb(outcome)
            else:
                logger.warning("batch %d failed on the cluster: %s", ref.index, outcome)
                run.batch_failed(ref, outcome)


@task(name="verify-batch-on-worker", cache_policy=NO_CACHE, persist_result=False)
def verify_batch_on_worker(
    context: VerifyContext, rows: list[CatalogRow], index: int, now: datetime
) -> VerifiedBatch:
    return verify_remote_batch(context, rows, index=index, now=now, worker=_worker_name())


def verify_on_cluster(run: VerificationRun, address: str) -> None:
    """Every batch of ``run`` verified on the Dask cluster at ``address``; results (or, for a
    batch no worker could verify, indeterminate results naming why) recorded in ``run``.

    Batches are read from the catalog as they are submitted, a bounded number ahead of the
    results recorded (:func:`ahead`), and recorded as they finish: the flow's process holds a
    window of batches, never the whole selection."""
    batches = run.batches()
    first = next(batches, None)
    if first is None:
        return
    context = run.context()
    now = run.plan.moment
    logger = get_run_logger()
    with _tasks_report_here(), DaskTaskRunner(address=address) as runner:

        def submit(item: tuple[int, list[CatalogRow]]) -> Any:
            i, rows = item
            parameters = {"context": context, "rows": rows, "index": i, "now": now}
            return runner.submit(verify_batch_on_worker, parameters=parameters)

        window = in_flight(sum(runner.client.nthreads().values()))
        numbered = enumerate(itertools.chain([first], batches))
        for (i, rows), future in ahead(numbered, submit, window=window):
            outcome = _outcome(future, VerifiedBatch)
            if isinstance(outcome, VerifiedBatch):
                run.absorb(outcome.results, worker=outcome.worker)
            else:
                logger.warning("verification batch %d failed on the cluster: %s", i, outcome)
                code, _, why = outcome.partition(" ")
                run.absorb(unverified(rows, code, f"not verified: {why.strip('()')}"))


def in_flight(threads: int) -> int:
    """Batches submitted ahead of the one awaited: every worker thread busy twice over, so that
    a slow batch at the head does not idle the cluster (at least :data:`MIN_IN_FLIGHT`)."""
    return max(MIN_IN_FLIGHT, 2 * threads)


class Completes(Protocol):
    """A future that calls back when done (Prefect's, Dask's, concurrent.futures')."""

    def add_done_callback(self, fn: Callable[[Any], Any], /) -> None: ...


def ahead(items: Iterable[T], submit: Callable[[T], F], *, window: int) -> Iterator[tuple[T, F]]:
    """``(item, submit(item))`` as each future finishes, at most ``window`` submitted and not
    yet handed back: the next item is read (and submitted) only as one is taken. In finishing
    order, so that one slow batch (a damaged object takes SeaweedFS seconds to refuse) does not
    keep the others from being submitted."""
    if window < 1:
        raise ValueError(f"window must be at least 1, not {window}")
    finished: queue.SimpleQueue[tuple[T, F]] = queue.SimpleQueue()
    pending = 0
    for item in items:
        future = submit(item)
        future.add_done_callback(_hand_back(finished, (item, future)))
        pending += 1
        if pending >= window:
            yield finished.get()
            pending -= 1
    for _ in range(pending):
        yield finished.get()


@task(name="rehash-batch-on-worker", cache_policy=NO_CACHE, persist_result=False)
def rehash_batch_on_worker(
    context: RehashContext, refs: list[DocumentRef], index: int
) -> RehashedBatch:
    return rehash_remote_batch(context, refs, index=index, worker=_worker_name())


class RehashOnCluster:
    """Hash-tree renewal's per-document work on the Dask cluster at ``address`` (a
    :data:`~archive.pipeline.evidence_rehash.FanOut`): each call takes one tree's documents in
    tasks of ``batch_size`` and returns their leaves; a lost or refused task's documents come
    back under its reason code (left for the next run), its reason kept in ``problems``."""

    def __init__(self, address: str, context: RehashContext, *, batch_size: int = 200) -> None:
        self.address, self.context, self.batch_size = address, context, batch_size
        self.batches_by_worker: Counter[str] = Counter()
        self.problems: list[str] = []  # "reason.code (what to do)", one per failed task

    def __call__(self, documents: list[Document], algorithm: str) -> list[Leaf]:
        if algorithm != self.context.algorithm:
            raise ValueError(f"the workers re-hash in {self.context.algorithm}, not {algorithm}")
        refs = [DocumentRef.of(d) for d in documents]
        parts = [refs[i : i + self.batch_size] for i in range(0, len(refs), self.batch_size)]
        logger = get_run_logger()
        leaves: list[Leaf] = []
        with _tasks_report_here(), DaskTaskRunner(address=self.address) as runner:
            futures = [
                runner.submit(
                    rehash_batch_on_worker,
                    parameters={"context": self.context, "refs": part, "index": i},
                )
                for i, part in enumerate(parts)
            ]
            for i, (part, future) in enumerate(zip(parts, futures, strict=True)):
                outcome = _outcome(future, RehashedBatch)
                if isinstance(outcome, RehashedBatch):
                    leaves += outcome.leaves
                    self.batches_by_worker[outcome.worker] += 1
                else:
                    logger.warning("re-hash batch %d failed on the cluster: %s", i, outcome)
                    self.problems.append(outcome)
                    leaves += [outcome.partition(" ")[0]] * len(part)
        return leaves


def _hand_back(
    finished: queue.SimpleQueue[tuple[T, F]], done: tuple[T, F]
) -> Callable[[Any], None]:
    return lambda _: finished.put(done)


def ensure_cluster(address: str, *, timeout_s: float) -> None:
    """Raise :class:`ClusterUnavailableError` unless the scheduler at ``address`` answers and
    at least one worker has joined it within ``timeout_s``."""
    what = (
        "check that `dask scheduler` runs there, that this machine can reach its port, and "
        "[cluster] scheduler_address (EMR_ARCHIVE_CLUSTER__SCHEDULER_ADDRESS); empty it to run "
        "on this machine's process pool"
    )
    try:
        client = Client(address, timeout=timeout_s, set_as_default=False)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError) as e:
        raise ClusterUnavailableError(
            f"the Dask scheduler at {address} did not answer within {timeout_s:g} s "
            f"({type(e).__name__}): {what}"
        ) from None
    try:
        client.wait_for_workers(1, timeout=timeout_s)
    except (OSError, TimeoutError):
        raise ClusterUnavailableError(
            f"no Dask worker has joined the scheduler at {address} within {timeout_s:g} s: start "
            f"`dask worker {address}` on the machines that archive (README, Scaling out)"
        ) from None
    finally:
        client.close()  # type: ignore[no-untyped-call]


def _outcome(future: Any, expected: type[T]) -> T | str:
    """The batch's result (an ``expected``), or the reason it has none as a string: a reason
    code first, then what to do in parentheses."""
    try:
        value = future.result(raise_on_failure=False)
    # The cluster lost the task: a worker died more often than allowed, the scheduler went.
    except (KilledWorker, CancelledError, OSError, TimeoutError) as e:
        return f"cluster.batch_lost ({type(e).__name__}: {e})"
    if isinstance(value, expected):
        return value
    if isinstance(value, WorkerUnavailableError):
        return f"{value.reason_code} ({value})"
    if isinstance(value, BaseException):  # a bug or a library failure on the worker
        return f"worker.error ({type(value).__name__}: {value})"
    return f"worker.error (unexpected result {type(value).__name__})"


def _worker_name() -> str:
    """The Dask worker's address (which machine did a batch), else host and process."""
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except ValueError:  # not inside a Dask worker (the task called directly)
        return f"{socket.gethostname()}:{os.getpid()}"


def _tasks_report_here() -> Any:
    """Workers report their task runs to the flow's Prefect API: without an address in the
    settings they carry, each worker would start a temporary server of its own and the UI would
    show no task (prefect #19925). A configured PREFECT_API_URL is kept as it is."""
    if PREFECT_API_URL.value():
        return temporary_settings()
    context = FlowRunContext.get()
    url = str(context.client.api_url) if context is not None else ""
    return temporary_settings(updates={PREFECT_API_URL: url} if url else {})

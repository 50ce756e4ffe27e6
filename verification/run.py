"""One verification run: archive-wide checks, then the selected records in batches on every core,
then the log, the report and the summary. The library behind the ``verify-archive`` flow, the
CLI and the benchmark.

Read only: the store is opened with the read-only identity and nothing is uploaded; the catalog
is opened (which verifies its chain), never appended to. A broken catalog chain stops the run
after the archive-wide checks: its rows cannot be trusted to say what to verify.

Memory does not grow with the catalog: the selection streams from the manifests in batches
(:func:`verification.select.selected`), the archive-wide comparisons go through an on-disk
index (:mod:`verification.catalog_index`), and each record's result goes to the log as it comes
(:class:`verification.log.LogWriter`): the run keeps a :class:`verification.tally.Tally`.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from archive import wiring
from archive.audit import AuditEvent, AuditLog, ChainReport
from archive.catalog import CatalogRow
from archive.core.errors import ReplicaError
from archive.core.pool import split, worker_pool
from archive.core.settings import Settings
from archive.store import ObjectStore, ReplicatedStore, S3ObjectStore, SealedStore, open_sites
from verification.catalog_index import CatalogIndex
from verification.config import HoldSet, VerificationSettings, output_directory
from verification.inventory import Finding, compare_bucket_copies, compare_inventory, open_catalog
from verification.log import LogWriter
from verification.rehomed import check_rehomed
from verification.remote import VerifyContext
from verification.replica import REPLICA, compare_sites, unreachable, unreachable_finding
from verification.report import Summary, write_reports
from verification.results import CheckResult, RecordResult, Status
from verification.select import Selection, marked, selected
from verification.tally import Tally
from verification.worker import FULL_CHECKS, init_worker, verify_chunk

Progress = Callable[[int, int], None]  # (records done, records selected)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunPlan:
    run_id: str
    selection: Selection
    started_at: datetime
    workers: int
    batch_size: int
    checks: str = FULL_CHECKS  # "full" or "fixity"
    at: datetime | None = None  # judge as if on this date (verification.as_of); None: now

    @classmethod
    def create(
        cls,
        settings: Settings,
        vsettings: VerificationSettings,
        *,
        selection: Selection,
        now: datetime,
        checks: str = FULL_CHECKS,
        at: datetime | None = None,
    ) -> RunPlan:
        return cls(
            run_id=f"verify-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}",
            selection=selection,
            started_at=now,
            workers=vsettings.workers or settings.archive.workers or os.cpu_count() or 1,
            batch_size=vsettings.batch_size,
            checks=checks,
            at=at,
        )

    @property
    def moment(self) -> datetime:
        """What the records are judged as of: the date asked about, else the run's start."""
        return self.at or self.started_at

    def describe(self) -> str:
        mode = self.selection.describe()
        return mode if self.at is None else f"{mode}; as of {self.at:%Y-%m-%d %H:%M}Z"


class VerificationRun:
    """:meth:`start` → :meth:`batches` → :meth:`verify_batch` each → :meth:`finish`; then
    :meth:`close` (or use ``with``)."""

    def __init__(
        self,
        *,
        settings: Settings,
        vsettings: VerificationSettings,
        plan: RunPlan,
        holds: HoldSet,
        archive_checks: list[CheckResult],
        findings: tuple[Finding, ...],
        source: Callable[[], Iterable[list[CatalogRow]]],
        selected: int,
        audit_store: ObjectStore,
        signers: frozenset[str] = frozenset(),
        keep_results: bool = False,
    ) -> None:
        """``source``: the selected rows, read again from the catalog each time it is called;
        ``selected``: how many rows it yields; ``keep_results``: hold every record's result for
        :attr:`Summary.results` too (tests, small runs), not only the tally and the log."""
        self.settings, self.vsettings, self.plan, self.holds = settings, vsettings, plan, holds
        self.signers = signers  # every signer the catalog recorded: the hospital's keys
        self._audit_store = audit_store
        self.archive_checks = archive_checks
        self.findings = findings
        self._source = source
        self.selected = selected
        self.tally = Tally()
        self._kept: list[RecordResult] | None = [] if keep_results else None
        self._log: LogWriter | None = None  # opened by the first results
        self.progress: Progress | None = None
        self.batches_by_worker: dict[str, int] = {}  # cluster runs: batches each worker did
        self._pool: Executor | None = None
        self._began = time.perf_counter()

    @classmethod
    def start(
        cls,
        settings: Settings,
        vsettings: VerificationSettings,
        plan: RunPlan,
        *,
        holds: HoldSet | None = None,
        disposed: frozenset[tuple[str, str]] = frozenset(),
        store: ObjectStore | None = None,
        chains: Sequence[tuple[str, ChainReport]] = (),
        keep_results: bool = False,
    ) -> VerificationRun:
        """Archive-wide checks and the selection; no record is read yet. ``disposed`` are the
        (key, version) pairs lawfully destroyed after their retention (the retention register):
        they are expected to be gone, so neither verified nor reported missing. ``chains`` are
        the registers' chain reports (the caller opens them); the audit log's is added here."""
        # Records are read with the read-only identity; only the audit log is written.
        audit_store = store or open_sites(settings)
        store = store or wiring.open_store(settings, read_only=True)
        audit = AuditLog.for_settings(settings, audit_store).verify_chain()
        catalog, chain = open_catalog(settings.catalog_dir)
        checks: list[CheckResult] = [chain]
        findings: tuple[Finding, ...] = ()
        signers: frozenset[str] = frozenset()
        source: Callable[[], Iterable[list[CatalogRow]]] = tuple  # no catalog: no rows
        count = 0
        if catalog is not None:
            tz = settings.archive.timezone
            signers = frozenset(catalog.signer_fingerprints())
            checks = [compare_bucket_copies(catalog, SealedStore.for_settings(settings, store))]
            # A refused re-homed map is a finding; the bucket is then listed bare.
            rehomed, listed = check_rehomed(store)
            checks += [rehomed] if rehomed is not None else []
            with CatalogIndex(newest=settings.replica.enabled) as index:
                for table, picked in marked(catalog, plan.selection, tz=tz, disposed=disposed):
                    index.add(table, picked)
                index.add_listing(listed.list_versions("records/"))
                result, findings = compare_inventory(index, map_refused=listed is not store)
                checks.append(result)
                if settings.replica.enabled:
                    replica = S3ObjectStore.from_settings(settings, read_only=True, site="replica")
                    result, seen = compare_sites(
                        index.newest(), listed, replica, holds=holds or HoldSet()
                    )
                    checks.append(result)
                    findings += seen
                count = index.picked
            source = partial(selected, catalog, plan.selection, tz=tz, disposed=disposed)
        checks += [chain_check(name, r) for name, r in [*chains, ("audit log", audit)]]
        return cls(
            settings=settings,
            vsettings=vsettings,
            plan=plan,
            holds=holds or HoldSet(),
            archive_checks=checks,
            findings=findings,
            source=source,
            selected=count,
            audit_store=audit_store,
            signers=signers,
            keep_results=keep_results,
        )

    def __enter__(self) -> VerificationRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def rows(self) -> list[CatalogRow]:
        """Every selected row at once (tests, benchmarks); the run itself streams
        :meth:`batches`."""
        return [row for rows in self._source() for row in rows]

    def batches(self) -> Iterator[list[CatalogRow]]:
        """The selected rows in batches of ``batch_size``, read from the catalog as they go."""
        size = self.plan.batch_size
        pending: list[CatalogRow] = []
        for rows in self._source():
            pending += rows
            while len(pending) >= size:
                yield pending[:size]
                pending = pending[size:]
        if pending:
            yield pending

    def verify_batch(self, batch: Sequence[CatalogRow]) -> dict[str, int]:
        """Verify one batch on every core; returns counts by status (no PHI through Prefect)."""
        chunks = split(list(batch), self.plan.workers * 2)
        now = self.plan.moment
        counts: dict[str, int] = {}
        for results in self._executor().map(verify_chunk, chunks, [now] * len(chunks)):
            for status, n in self.absorb(results).items():
                counts[status] = counts.get(status, 0) + n
        return counts

    def absorb(self, results: Sequence[RecordResult], *, worker: str = "") -> dict[str, int]:
        """Results verified elsewhere (a pool process, a cluster worker) into the run; returns
        their counts by status. ``worker``: which cluster worker did them, for the summary."""
        counts: dict[str, int] = {}
        self._writer().add(results)
        for r in results:
            status = self.tally.add(r).value
            counts[status] = counts.get(status, 0) + 1
        if self._kept is not None:
            self._kept += results
        if worker:
            self.batches_by_worker[worker] = self.batches_by_worker.get(worker, 0) + 1
        if self.progress is not None:
            self.progress(self.tally.verified, self.selected)
        return counts

    def _writer(self) -> LogWriter:
        if self._log is None:
            plan = self.plan
            self._log = LogWriter(
                output_directory(self.settings, self.vsettings),
                run_id=plan.run_id,
                mode=plan.selection.mode.value,
                verified_at=plan.started_at,
            )
        return self._log

    def context(self) -> VerifyContext:
        """What a cluster worker needs to verify this run's batches (no secret in it)."""
        plan = self.plan
        return VerifyContext(
            run_id=plan.run_id,
            settings=self.settings,
            vsettings=self.vsettings,
            holds=self.holds,
            checks=plan.checks,
            signers=self.signers,
            as_of=plan.at,
        )

    def finish(self) -> Summary:
        """Write the audit event, the log, the HTML report and the summary JSON; return the
        summary."""
        summary = self._audit(self._summary())
        directory = output_directory(self.settings, self.vsettings)
        log, self._log = self._writer(), None
        return write_reports(directory, summary, log_path=log.close())

    def _summary(self) -> Summary:
        return Summary.create(
            run_id=self.plan.run_id,
            mode=self.plan.describe(),
            checks=self.plan.checks,
            started_at=self.plan.started_at,
            duration_s=time.perf_counter() - self._began,
            archive_checks=tuple(self.archive_checks),
            findings=self.findings,
            tally=self.tally,
            selected=self.selected,
            as_of=self.plan.at,
            kept=None if self._kept is None else tuple(self._kept),
        )

    def _audit(self, summary: Summary) -> Summary:
        """The run's audit event, at both sites; with the replica down, at the primary alone
        (the next verification reports the segment ``replica.missing``, ``repair`` copies it)
        and the summary says the replica was unreachable. Returns the summary to report."""
        store = self._audit_store
        if not isinstance(store, ReplicatedStore):
            self._write_audit(summary, store)
            return summary
        if any(c.reason_code == "replica.unreachable" for c in self.archive_checks):
            self._write_audit(summary, store.primary)
            return summary
        try:
            self._write_audit(summary, store)
            return summary
        except ReplicaError as e:  # the replica went down during the run
            checks = [c for c in self.archive_checks if c.check != REPLICA]
            self.archive_checks = [*checks, unreachable(e)]
            self.findings = (*self.findings, unreachable_finding(e))
        summary = self._summary()
        if not self._audited(store.primary):  # the failed write may have landed at the primary
            self._write_audit(summary, store.primary)
        return summary

    def _audited(self, store: ObjectStore) -> bool:
        run = ("run", self.plan.run_id)
        events = AuditLog.for_settings(self.settings, store).show(action="verify.run")
        return any(run in e.entities for e in events)

    def _write_audit(self, summary: Summary, store: ObjectStore) -> None:
        """One audit event per verification run: mode and counts, no record names."""
        log = AuditLog.for_settings(self.settings, store)
        counts = summary.counts()
        log.append(
            AuditEvent(
                actor="verify-archive",
                role="system",
                action="verify.run",
                recorded=self.plan.started_at,
                outcome="success" if summary.status is Status.PASSED else "failure",
                entities=(("run", self.plan.run_id),),
                detail={
                    **counts,
                    "mode": self.plan.selection.mode.value,
                    "selected": summary.selected,
                    **({"as_of": self.plan.at.isoformat()} if self.plan.at else {}),
                },
            )
        )
        log.flush()

    def close(self) -> None:
        if self._log is not None:  # not finished: no log for a run that did not end
            self._log.abort()
            self._log = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _executor(self) -> Executor:
        if self._pool is None:
            plan = self.plan
            args = (self.settings, self.vsettings, self.holds, plan.checks, self.signers, plan.at)
            self._pool = worker_pool(self.plan.workers, initializer=init_worker, initargs=args)
        return self._pool


def chain_check(name: str, report: ChainReport) -> CheckResult:
    """A register's or the audit log's chain as an archive-wide check: broken fails the run."""
    check = name.replace(" ", "-") + ".chain"  # "access-register.chain"
    if report.passed:
        return CheckResult.passed(check, report.reason)
    return CheckResult.failed(check, f"{check}_broken", report.reason)

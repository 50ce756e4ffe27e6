"""The nightly run's evidence stage: one hash tree, one RFC 3161 timestamp, one evidence record
per document (RFC 4998), stored sealed and COMPLIANCE-locked.

Order, each step durable before the next (see :mod:`archive.pipeline.evidence_state`):

1. ``hold``: the run's documents are written as *pending* before its catalog manifest;
2. open trees (timestamped by an interrupted run, records not all written) are finished with
   their saved token: never a second timestamp for a tree that has one;
3. every unresolved run's documents (this run's and those a TSA outage left pending) go into
   **one** tree whose root gets one timestamp, checked against the TSA trust roots;
4. the tree index (with the token) is saved, then each evidence record, then the done markers.

Pending runs are folded into the next tree as plain leaves rather than as a tree of trees: every
evidence record then has the one shape (a single chain, one reduced tree) that verification,
export and the oracles read, and a later run costs the same one TSA request.

If the TSA cannot be had (down, or its token fails the trust roots) the documents stay pending,
counted in the run summary; the next run completes them.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from asn1crypto import cms

from archive.core.errors import ArchiveError, ObjectConflictError, TrustServiceUnavailableError
from archive.evidence import (
    DataObject,
    HashTree,
    TimestampCheck,
    TimestampRejectedError,
    WeakAlgorithms,
    new_record_ders,
    validate_evidence,
)
from archive.pipeline.evidence_state import (
    EvidenceState,
    Member,
    TreeIndex,
    whole_second,
)
from archive.pipeline.evidence_tokens import checked_token, verified_tree
from archive.sign.tsa import token_certs, tst_info
from archive.store import SealedStore
from archive.store.naming import record_of_evidence_key

ALGORITHM = "sha256"
Timestamper = Callable[[bytes], cms.ContentInfo]
Step = Callable[[str], None]  # "held", "tree-built", "timestamped", "record-written", "done"


@dataclass
class EvidenceOutcome:
    written: int = 0  # evidence records this stage created
    pending: int = 0  # documents left without evidence (the next run completes them)
    timestamps: int = 0  # TSA requests that gave a token
    conflicts: int = 0  # keys already holding a record that does not prove the document
    reason: str | None = None  # why documents stay pending (a code, no PHI)
    error: str | None = None  # the stage stopped (store down, ...): the next run resumes it

    def failures(self) -> dict[str, int]:
        """What the run reports as failed (and so ends Failed): conflicts and a stopped stage;
        a TSA outage is *pending*, not failed (the records are safe, the next run completes)."""
        failed = {"evidence.conflict": self.conflicts} if self.conflicts else {}
        if self.error is not None:
            failed["evidence.error"] = 1
        return failed


class EvidenceStage:
    def __init__(
        self,
        state: EvidenceState,
        store: SealedStore,
        *,
        timestamper: Timestamper,
        check: TimestampCheck,
        cache: Path,
        io_threads: int = 8,
        on_step: Step | None = None,
    ) -> None:
        self._state, self._store = state, store
        self._timestamper, self._check = timestamper, check
        self._cache, self._threads = cache, io_threads
        self._step = on_step or (lambda _step: None)
        self._now: datetime | None = None
        # The documents this stage held for a run in this process: their records' locks were
        # set by this run, so the date held is the lock (no HEAD); see _retain_until.
        self._held: tuple[str, frozenset[str]] = ("", frozenset())
        self._fresh: frozenset[str] = frozenset()

    def hold(self, run_id: str, members: list[Member]) -> None:
        if members:
            self._state.save_pending(run_id, members)
        self._held = (run_id, frozenset(m.key for m in members))
        self._step("held")

    def complete_safely(
        self,
        run_id: str,
        *,
        now: datetime,
        extra: Callable[[str], Iterable[Member]],
        held: int,
    ) -> EvidenceOutcome:
        """:meth:`complete`, or, when the store or the disk fails under it, an outcome saying
        so: the run's records are catalogued by now and its report must still be written.
        ``held``: this run's documents, pending at least (earlier pending ones are unknown)."""
        try:
            return self.complete(run_id, now=now, extra=extra)
        except (ArchiveError, OSError) as e:
            return EvidenceOutcome(pending=held, error=type(e).__name__)

    def complete(
        self, run_id: str, *, now: datetime, extra: Callable[[str], Iterable[Member]]
    ) -> EvidenceOutcome:
        """Finish open trees, then timestamp every unresolved run's documents in one tree.
        ``extra(run)``: documents known only after the hold (the run's catalog manifest)."""
        outcome = EvidenceOutcome()
        self._now = now
        self._fresh = self._held[1] if self._held[0] == run_id else frozenset()
        trees, done = self._state.tree_ids(), self._state.done_runs()
        unresolved = self._state.pending_runs(done)
        for tree_id in sorted(trees - done):  # open: timestamped, records not all written
            index = self._state.load_tree(tree_id)
            self._write(index, self._verified_tree(index), outcome)
            unresolved -= set(index.covers)
        if not unresolved:
            return outcome
        members = {m.key: m for r in sorted(unresolved) for m in self._members(r, extra)}
        tree = HashTree.build(ALGORITHM, (bytes.fromhex(m.sha256) for m in members.values()))
        self._step("tree-built")
        try:
            token = self._timestamp(tree.root)
        except (TrustServiceUnavailableError, TimestampRejectedError) as e:
            outcome.pending = len(members)
            outcome.reason = getattr(e, "code", "evidence.tsa_unavailable")
            return outcome
        outcome.timestamps += 1
        tsa_cert, _ = token_certs(token)
        index = TreeIndex(
            tree_id=_fresh_id(run_id, trees),
            algorithm=ALGORITHM,
            root=tree.root.hex(),
            gen_time=tst_info(token)["gen_time"].native,
            tsa_cert_sha256=hashlib.sha256(tsa_cert.dump()).hexdigest(),
            covers=tuple(sorted(unresolved)),
            members=tuple(sorted(members.values(), key=lambda m: m.key)),
            token=token.dump(),
        )
        self._state.save_tree(index)
        self._step("timestamped")
        self._write(index, tree, outcome)
        return outcome

    # -- steps ----------------------------------------------------------------------------------

    def _members(self, run_id: str, extra: Callable[[str], Iterable[Member]]) -> list[Member]:
        return [*self._state.load_pending(run_id), *extra(run_id)]

    def _timestamp(self, root: bytes) -> cms.ContentInfo:
        token = self._timestamper(root)
        return checked_token(token, root=root, algorithm=ALGORITHM, check=self._check)

    def _verified_tree(self, index: TreeIndex) -> HashTree:
        tree, _ = verified_tree(
            index.algorithm,
            (m.sha256 for m in index.members),
            root=index.root,
            token_der=index.token,
            what=f"evidence tree {index.tree_id}",
        )
        return tree

    def _write(self, index: TreeIndex, tree: HashTree, outcome: EvidenceOutcome) -> None:
        token = cms.ContentInfo.load(index.token)
        ders = new_record_ders(index.algorithm, tree.all_reduced(), token)
        records = [(m, ders[bytes.fromhex(m.sha256)]) for m in index.members]

        def one(job: tuple[Member, bytes]) -> str:
            member, der = job
            status = self._put(member, der)
            _cache(self._cache / member.key, der)
            self._step("record-written")
            return status

        with ThreadPoolExecutor(self._threads, thread_name_prefix="evidence") as pool:
            statuses = Counter(pool.map(one, records))
        # Done even with conflicts: a locked key cannot be fixed by retrying every night; the
        # run counts it as a failure and verification reports the record (evidence.not_covered).
        self._state.mark_done(index)
        self._step("done")
        outcome.written += statuses["created"]
        outcome.conflicts += statuses["conflict"]

    def _put(self, member: Member, der: bytes) -> str:
        try:
            until = whole_second(self._retain_until(member))
            put = self._store.put_locked(member.key, der, retain_until=until, expect_new=True)
            return "created" if put.created else "existing"
        except ObjectConflictError:
            # A document two runs held (a record adopted after its first run's catalog append
            # failed) already has a record from an earlier tree: keep it if it proves the document.
            head = self._store.latest(member.key)
            if head is None:
                raise
            existing = self._store.get(member.key, version_id=head.version_id)
            if _proves(existing, member, self._check, self._now):
                return "existing"
            return "conflict"

    def _retain_until(self, member: Member) -> datetime:
        """The date promised at the hold, or the record's own lock when it is later now: a
        retention upgrade made while this evidence was pending (a TSA outage) extended the
        record but had no evidence record to extend (retention/upgrades.py).

        Only a document held by an *earlier* run (or an earlier attempt of this one) can have
        been upgraded while pending, so only those cost a HEAD. This run's own documents were
        locked by this run to the date it held: no upgrade could have found them in the catalog
        before this run's append, minutes ago, and none can run until this run ends: ``retention
        apply`` takes the run lock and lease itself (retention/exclusion.py)."""
        record = record_of_evidence_key(member.key)
        if record is None or member.key in self._fresh:
            return member.retain_until
        head = self._store.latest(record)
        locked = None if head is None else head.lock.retain_until
        return member.retain_until if locked is None else max(member.retain_until, locked)


def _cache(path: Path, der: bytes) -> None:
    """A copy for export and quick looks, never trusted (verification reads the locked one):
    private, but not fsynced like state is."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(der)


def _proves(der: bytes, member: Member, check: TimestampCheck, now: datetime | None) -> bool:
    digests = {ALGORITHM: bytes.fromhex(member.sha256)}
    verdict = validate_evidence(
        der,
        [DataObject(digests=digests)],
        as_of=now or datetime.now(UTC),
        check_timestamp=check,
        weak=WeakAlgorithms(),
    )
    return verdict.ok


def _fresh_id(run_id: str, taken: Sequence[str] | set[str]) -> str:
    """The tree's id: the run's, unless a rerun under the same id already made a tree."""
    candidate, n = run_id, 0
    while candidate in taken:
        n += 1
        candidate = f"{run_id}.{n}"
    return candidate

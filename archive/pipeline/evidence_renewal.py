"""Timestamp renewal of the evidence records (RFC 4998 §5.2): per tree of trees, never per record.

Every evidence record of a nightly tree ends in that tree's one token, so renewing the proof of
the whole tree is one new ArchiveTimeStamp over H(DER of that token), the same for all its
records. A renewal takes every tree that is due, puts one leaf per distinct newest token into
one hash tree and asks the TSA for **one** timestamp on its root; each renewed token then gets
one ATS object (:mod:`archive.pipeline.evidence_renewal_state`) that readers append
(:mod:`archive.pipeline.evidence_current`). A million records in a thousand trees: one TSA call,
a thousand small PUTs; after that, the trees renewed together share one token and the next
renewal writes one object for all of them.

Due (``renew_before_days``, the dated weak-algorithm table): the newest token's TSA certificate
ends within the horizon, or the token's signature digest weakens within it. Already past
(certificate expired, digest weak) is a missed deadline: renewed anyway, and reported as
``evidence.expired`` / ``evidence.weak_algorithm`` so the job fails loudly. A *hash-tree*
algorithm that weakens needs a new chain over every document (``evidence.hash_renewal_due``,
:mod:`archive.pipeline.evidence_rehash`): reported, never papered over with a timestamp renewal
in the weak hash. The new chains are trees too (one per hash-tree renewal batch), renewed here
like the nightly ones; a tree all of whose documents have a newer chain is retired.

A renewal token is renewed again only once the TSA stamps with a newer certificate (seen in the
newest token, nightly ones included); until then it is ``evidence.no_newer_tsa``, a failure.

Each ATS object is locked until the longest catalogued retain-until of its trees' members, or
longer when a retention upgrade left a floor on the token it renews
(:mod:`archive.pipeline.evidence_floor`: one HEAD per token); the floor is passed on to the
batch's token so the next renewal keeps it.

Order, each step durable before the next: the batch (token and what it renews) is saved, then
each ATS object (and the floor passed on), then the done marker. A rerun first finishes open
batches with their saved token, then plans again: nothing is renewed twice. A kill between the
TSA's answer and the saved batch costs one more timestamp on the rerun, nothing else.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from asn1crypto import cms

from archive.core.errors import ArchiveError, TrustServiceUnavailableError
from archive.core.sections import EvidenceSettings
from archive.evidence import HashTree, TimestampCheck, TimestampRejectedError
from archive.pipeline.evidence_due import (
    UNRESOLVED,
    Due,
    Tip,
    assess,
    current_trees,
    newest,
    no_gain,
    tips_of,
    tsa_cert,
)
from archive.pipeline.evidence_floor import ensure_locked, latest_of, raise_floor, read_floor
from archive.pipeline.evidence_renewal_state import (
    RenewalBatch,
    RenewalState,
    Renewed,
    encode_ats,
    fresh_batch_id,
    token_sha256,
)
from archive.pipeline.evidence_state import TREES, TreeIndex
from archive.pipeline.evidence_tokens import checked_token, verified_tree
from archive.sign.tsa import tst_info
from archive.store import SealedStore

RenewalTimestamper = Callable[[bytes, str], cms.ContentInfo]  # (digest, its algorithm) → token
Step = Callable[[str], None]  # "tree-built", "timestamped", "ats-written", "done"


@dataclass
class RenewalPlan:
    due: list[Due] = field(default_factory=list)
    trees: int = 0
    records: int = 0
    tokens: int = 0  # distinct newest tokens (what one renewal would write objects for)
    open_batches: int = 0  # timestamped by an interrupted renewal, objects not all written

    @property
    def tsa_calls(self) -> int:
        return len({d.tip.algorithm for d in self.due if d.by_timestamp})

    def reasons(self) -> Counter[str]:
        return Counter(d.reason for d in self.due)

    def lines(self) -> list[str]:
        due_trees = sum(len(d.tip.trees) for d in self.due)
        due_records = sum(d.tip.records for d in self.due)
        out = [
            f"{self.trees} tree(s), {self.records} record(s), {self.tokens} newest token(s)",
            f"due: {len(self.due)} token(s) over {due_trees} tree(s), {due_records} record(s); "
            f"TSA calls: {self.tsa_calls}; interrupted renewals to finish: {self.open_batches}",
        ]
        out += [f"  {code}: {n} token(s)" for code, n in sorted(self.reasons().items())]
        out += [f"  {d.reason} ({len(d.tip.trees)} tree(s)): {d.detail}" for d in self.due[:20]]
        return out


@dataclass
class RenewalOutcome:
    plan: RenewalPlan = field(default_factory=RenewalPlan)
    timestamps: int = 0
    tokens: int = 0  # tokens renewed (ATS objects this job stored or found stored)
    trees: int = 0
    records: int = 0
    written: int = 0  # ATS objects created now (not found from an earlier attempt)
    resumed: int = 0  # interrupted renewals finished
    error: str | None = None  # why a renewal could not be had (code, no PHI)

    def failures(self) -> dict[str, int]:
        """Missed deadlines, hash-tree renewals due and a TSA that would not answer: the job
        fails with these (the renewals it could do are stored all the same)."""
        failed = {r: n for r, n in self.plan.reasons().items() if r in UNRESOLVED}
        if self.error is not None:
            failed[self.error] = failed.get(self.error, 0) + 1
        return failed


class EvidenceRenewal:
    def __init__(
        self,
        store: SealedStore,
        *,
        settings: EvidenceSettings,
        timestamper: RenewalTimestamper,
        check: TimestampCheck,
        io_threads: int = 8,
        on_step: Step | None = None,
    ) -> None:
        self._store, self._state = store, RenewalState(store)
        self._settings, self._timestamper, self._check = settings, timestamper, check
        self._threads = io_threads
        self._step = on_step or (lambda _step: None)

    # -- planning: reads only -------------------------------------------------------------------

    def plan(self, now: datetime) -> RenewalPlan:
        batch_ids, done = self._state.batch_ids(), self._state.done_ids()
        batches = [self._state.load_batch(b) for b in sorted(batch_ids)]
        hashed = [self._state.load_hash_batch(b) for b in sorted(self._state.hash_batch_ids())]
        trees = current_trees(self._trees(), hashed)
        tips = tips_of(trees, batches)
        plan = RenewalPlan(
            trees=sum(len(t.trees) for t in tips),
            records=sum(t.records for t in tips),
            tokens=len(tips),
            open_batches=len(batch_ids - done),
        )
        horizon = now + timedelta(days=self._settings.renew_before_days)
        weak = self._settings.weak_since()
        due = [d for t in tips if (d := assess(t, now, horizon, weak)) is not None]
        # A renewal token is renewed only by a newer TSA certificate than its own (the newest
        # token's, nightly ones included, shows what the TSA stamps with today); a nightly
        # tree's first renewal always goes ahead.
        current = tsa_cert(newest([*(b.token for b in batches), *(t.token for t in trees)]))
        renewals = {b.token for b in batches}
        plan.due = [
            no_gain(d) if d.tip.token in renewals and tsa_cert(d.tip.token) == current else d
            for d in due
        ]
        return plan

    def _trees(self) -> list[TreeIndex]:
        def load(tree_id: str) -> TreeIndex:
            key = TREES + tree_id + ".json"
            head = self._store.latest(key)
            if head is None:
                raise ArchiveError(f"evidence tree {tree_id} was listed and is gone")
            return TreeIndex.decode(self._store.get(key, version_id=head.version_id))

        names = sorted(
            v.key[len(TREES) : -len(".json")]
            for v in self._store.list_versions(TREES)
            if not v.is_delete_marker and v.key.endswith(".json")
        )
        with ThreadPoolExecutor(self._threads, thread_name_prefix="renewal") as pool:
            return list(pool.map(load, sorted(set(names))))

    # -- renewing -------------------------------------------------------------------------------

    def renew(self, now: datetime) -> RenewalOutcome:
        out = RenewalOutcome()
        for batch_id in sorted(self._state.batch_ids() - self._state.done_ids()):
            self._write(self._state.load_batch(batch_id), out)
            out.resumed += 1
        out.plan = self.plan(now)
        taken = self._state.batch_ids()
        for algorithm in sorted({d.tip.algorithm for d in out.plan.due if d.by_timestamp}):
            tips = [d.tip for d in out.plan.due if d.by_timestamp and d.tip.algorithm == algorithm]
            tree = HashTree.build(algorithm, (t.leaf for t in tips))
            self._step("tree-built")
            try:
                token = self._timestamp(tree.root, algorithm)
            except (TrustServiceUnavailableError, TimestampRejectedError) as e:
                out.error = getattr(e, "code", "evidence.tsa_unavailable")
                continue
            out.timestamps += 1
            batch = RenewalBatch(
                batch_id=fresh_batch_id(now, taken),
                algorithm=algorithm,
                root=tree.root.hex(),
                gen_time=tst_info(token)["gen_time"].native,
                token=token.dump(),
                renewed=tuple(_renewed(t) for t in tips),
            )
            taken.add(batch.batch_id)
            self._state.save_batch(batch)
            self._step("timestamped")
            self._write(batch, out)
        return out

    def _timestamp(self, root: bytes, algorithm: str) -> cms.ContentInfo:
        token = self._timestamper(root, algorithm)
        return checked_token(token, root=root, algorithm=algorithm, check=self._check)

    def _write(self, batch: RenewalBatch, out: RenewalOutcome) -> None:
        """Store the batch's ATS objects (again: the same bytes are found, not duplicated)."""
        tree, token = verified_tree(
            batch.algorithm,
            (r.leaf for r in batch.renewed),
            root=batch.root,
            token_der=batch.token,
            what=f"renewal {batch.batch_id}",
        )

        def one(renewed: Renewed) -> tuple[bool, datetime | None]:
            created = self._state.put_ats(renewed, encode_ats(tree.reduced(leaf(renewed)), token))
            # The floor is read after the put: an upgrade that raised it before is seen here, one
            # that raises it after walks the record's evidence through this object and extends
            # it itself. A resumed batch re-reads it too (an upgrade may have come in between).
            floor = read_floor(self._store, renewed.token_sha256)
            if floor is not None and floor > renewed.retain_until:
                key = renewed.key
                head = self._store.latest(key)
                if head is None:
                    raise ArchiveError(f"renewal object {key} was written and is gone")
                ensure_locked(self._store, key, head.version_id, head.lock.retain_until, floor)
            self._step("ats-written")
            return created, floor

        with ThreadPoolExecutor(self._threads, thread_name_prefix="renewal") as pool:
            results = list(pool.map(one, batch.renewed))
        created = [c for c, _ in results]
        # The batch's token continues every token it renewed: it keeps their floors (before the
        # done marker, so a rerun after a crash here writes it).
        floor = latest_of(f for _, f in results)
        if floor is not None:
            raise_floor(self._store, token_sha256(batch.token), floor)
        self._state.mark_done(batch)
        self._step("done")
        out.written += sum(created)
        out.tokens += len(batch.renewed)
        out.trees += sum(len(r.trees) for r in batch.renewed)
        out.records += sum(r.records for r in batch.renewed)


def leaf(renewed: Renewed) -> bytes:
    return bytes.fromhex(renewed.leaf)


def _renewed(tip: Tip) -> Renewed:
    return Renewed(
        token_sha256(tip.token), tip.leaf.hex(), tip.retain_until, tip.trees, tip.records
    )

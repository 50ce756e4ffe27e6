"""Hash-tree renewal of the evidence records (RFC 4998 §5.2): a new chain in a stronger hash.

When the hash the trees were built with weakens, a timestamp over them proves nothing more: every
document is hashed again with the new algorithm ``H'``, and its record gets a new chain whose
first ATS covers ``H'(H'(d) ‖ H'(DER of the record's ArchiveTimeStampSequence so far))`` (the
pair not sorted: :func:`archive.evidence.hash_tree_renewal_leaf`). That leaf is per document, so
this renewal touches every document (read and opened from the store) and writes one locked
object per record; the leaves of up to ``batch_size`` documents still share one hash tree and
one TSA call, and the new chains' later timestamp renewals are again per tree of trees.

Before a document is re-hashed its bytes must be the catalogued ones (SHA-256 from the
hash-chained catalog) and its current record must cover that SHA-256: a new chain must never be
built over a damaged or swapped document. Such a document is counted and left as it is.

Each new chain object is locked as long as the record's own evidence is now (the catalogued date
or longer, after a retention upgrade), read again after the object is written (a resumed batch
may be older than an upgrade); a later date is passed on as the floor of the new token
(:mod:`archive.pipeline.evidence_floor`).

Reading, opening and hashing every document is the costly part (the TSA call is one per tree):
with a ``fan_out`` (:class:`flows.cluster.RehashOnCluster`) the catalogued records' leaves are
computed on the workers of a Dask cluster, each reading the record from the store itself
(:mod:`archive.pipeline.evidence_rehash_remote`), and come back as :class:`Rehashed` entries or
reason codes; this process stays the one writer (the batch, the chain objects, the done marker).

Order as in :mod:`archive.pipeline.evidence_renewal`: the batch (token and every entry) is saved
before any object, objects are create-once, the done marker comes last; a rerun finishes open
batches and skips documents some batch in the same algorithm already covers.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice

from asn1crypto import cms

from archive.core.errors import ArchiveError, TrustServiceUnavailableError
from archive.evidence import (
    HashTree,
    TimestampCheck,
    TimestampRejectedError,
    hash_tree_renewal_leaf,
    read_record,
)
from archive.pipeline.evidence_current import evidence_at
from archive.pipeline.evidence_floor import ensure_locked, latest_of, raise_floor
from archive.pipeline.evidence_renewal import RenewalTimestamper
from archive.pipeline.evidence_renewal_state import (
    HashBatch,
    Rehashed,
    RenewalState,
    encode_chain_ats,
    fresh_batch_id,
    token_sha256,
)
from archive.pipeline.evidence_tokens import checked_token, verified_tree
from archive.sign.tsa import tst_info
from archive.store import SealedStore

Step = Callable[[str], None]  # "hashed", "timestamped", "chain-written", "done"


@dataclass(frozen=True, slots=True)
class Stored:
    """Where a catalogued record's sealed PDF lies: what another machine needs to read it."""

    bucket: str
    object_key: str
    version_id: str
    encounter_id: str  # part of the envelope's identity (its AAD); never logged


@dataclass(frozen=True)
class Document:
    """One document whose evidence is re-hashed: its initial record's key, its catalogued
    SHA-256, how long its record is locked, and how to read its bytes (here; ``stored``: a
    record a cluster worker can read for itself, None for a file of this machine's)."""

    key: str
    sha256: str
    retain_until: datetime
    read: Callable[[], bytes]
    stored: Stored | None = None


Leaf = Rehashed | str  # a document's new leaf, or why it gets none (a reason code, "already")
# Documents (all with ``stored``) → their leaves, in order, computed elsewhere (a cluster).
FanOut = Callable[[list[Document], str], list[Leaf]]


@dataclass
class RehashOutcome:
    documents: int = 0  # documents given
    renewed: int = 0  # now carry a chain in the new algorithm (this run or a resumed one)
    already: int = 0  # had one before this run
    written: int = 0  # chain objects created now
    timestamps: int = 0
    resumed: int = 0
    problems: Counter[str] = field(default_factory=Counter)  # reason code → documents left
    seconds_hashing: float = 0.0

    def failures(self) -> dict[str, int]:
        return dict(self.problems)


class HashTreeRenewal:
    def __init__(
        self,
        store: SealedStore,
        *,
        timestamper: RenewalTimestamper,
        check: TimestampCheck,
        batch_size: int = 100_000,
        io_threads: int = 8,
        on_step: Step | None = None,
        fan_out: FanOut | None = None,
    ) -> None:
        self._store, self._state = store, RenewalState(store)
        self._timestamper, self._check = timestamper, check
        self._batch, self._threads = batch_size, io_threads
        self._step = on_step or (lambda _step: None)
        self._fan_out = fan_out

    def plan(self, documents: Sequence[Document], algorithm: str) -> RehashOutcome:
        """What :meth:`renew` would do, from the saved batches alone (no document read, no TSA
        call, no write): ``already`` covered in ``algorithm``, ``timestamps`` the TSA calls the
        rest would take (open batches are finished first, without one)."""
        batches = [self._state.load_hash_batch(b) for b in sorted(self._state.hash_batch_ids())]
        covered = {e.key for b in batches if b.algorithm == algorithm for e in b.entries}
        todo = sum(d.key not in covered for d in documents)
        return RehashOutcome(
            documents=len(documents),
            already=len(documents) - todo,
            timestamps=-(-todo // self._batch),
            resumed=len(self._state.hash_batch_ids() - self._state.hash_done_ids()),
        )

    def renew(self, documents: Sequence[Document], algorithm: str, now: datetime) -> RehashOutcome:
        out = RehashOutcome(documents=len(documents))
        covered: set[str] = set()  # by a batch in this algorithm, before this run
        done = self._state.hash_done_ids()
        for batch_id in sorted(self._state.hash_batch_ids()):
            batch = self._state.load_hash_batch(batch_id)
            if batch_id not in done:
                self._write(batch, out)
                out.resumed += 1
            elif batch.algorithm == algorithm:
                covered |= {e.key for e in batch.entries}
        out.already = sum(d.key in covered for d in documents)
        todo = [d for d in documents if d.key not in covered]
        taken = self._state.hash_batch_ids()
        for chunk in _chunks(todo, self._batch):
            results = self._leaves(chunk, algorithm)
            entries = [r for r in results if isinstance(r, Rehashed)]
            out.problems.update(r for r in results if isinstance(r, str) and r != "already")
            out.already += sum(r == "already" for r in results)
            self._step("hashed")
            if not entries:
                continue
            tree = HashTree.build(algorithm, (bytes.fromhex(e.leaf) for e in entries))
            try:
                token = self._timestamp(tree.root, algorithm)
            except (TrustServiceUnavailableError, TimestampRejectedError) as e:
                out.problems[getattr(e, "code", "evidence.tsa_unavailable")] += len(entries)
                continue
            out.timestamps += 1
            batch = HashBatch(
                fresh_batch_id(now, taken),
                algorithm,
                tree.root.hex(),
                tst_info(token)["gen_time"].native,
                token.dump(),
                tuple(entries),
            )
            taken.add(batch.batch_id)
            self._state.save_hash_batch(batch)
            self._step("timestamped")
            self._write(batch, out)
        return out

    def _leaves(self, chunk: list[Document], algorithm: str) -> list[Leaf]:
        """Each document's leaf: the stored records' on the cluster when there is one, the rest
        (and everything without one) on this machine's threads."""
        far = [d for d in chunk if self._fan_out is not None and d.stored is not None]
        found: dict[str, Leaf] = {}
        if far and self._fan_out is not None:
            answers = self._fan_out(far, algorithm)
            found = {d.key: _answered(d, a) for d, a in zip(far, answers, strict=True)}
        near = [d for d in chunk if d.key not in found]
        with ThreadPoolExecutor(self._threads, thread_name_prefix="rehash") as pool:
            leaves = list(pool.map(self._near(algorithm), near))
        found |= dict(zip((d.key for d in near), leaves, strict=True))
        return [found[d.key] for d in chunk]

    def _near(self, algorithm: str) -> Callable[[Document], Leaf]:
        return lambda document: new_leaf(self._store, document, algorithm)

    def _timestamp(self, root: bytes, algorithm: str) -> cms.ContentInfo:
        token = self._timestamper(root, algorithm)
        return checked_token(token, root=root, algorithm=algorithm, check=self._check)

    def _write(self, batch: HashBatch, out: RehashOutcome) -> None:
        tree, token = verified_tree(
            batch.algorithm,
            (e.leaf for e in batch.entries),
            root=batch.root,
            token_der=batch.token,
            what=f"hash renewal {batch.batch_id}",
        )

        def one(entry: Rehashed) -> tuple[bool, datetime | None]:
            der = encode_chain_ats(batch.algorithm, tree.reduced(bytes.fromhex(entry.leaf)), token)
            created = self._state.put_chain(entry, der)
            # An upgrade since the batch was saved (a resumed one) extended the record's own
            # evidence: read after the put, one HEAD per document (this job reads each anyway).
            # Per document, not the old token's floor, which its whole tree shares.
            held = self._store.latest(entry.key)
            until = None if held is None else held.lock.retain_until
            if until is None or until <= entry.retain_until:
                until = None
            else:
                key = entry.chain_key
                head = self._store.latest(key)
                if head is None:
                    raise ArchiveError(f"chain object {key} was written and is gone")
                ensure_locked(self._store, key, head.version_id, head.lock.retain_until, until)
            self._step("chain-written")
            return created, until

        with ThreadPoolExecutor(self._threads, thread_name_prefix="rehash") as pool:
            results = list(pool.map(one, batch.entries))
        created = [c for c, _ in results]
        floor = latest_of(f for _, f in results)
        if floor is not None:  # dates the batch's members do not have: the next renewal's floor
            raise_floor(self._store, token_sha256(batch.token), floor)
        self._state.mark_hash_done(batch)
        self._step("done")
        out.written += sum(created)
        out.renewed += len(batch.entries)


def new_leaf(store: SealedStore, document: Document, algorithm: str) -> Leaf:
    """The document's new leaf, or why it gets none (a reason code, or "already"): its current
    evidence read from ``store``, its bytes checked against the catalogued SHA-256 first."""
    current = evidence_at(store, document.key)
    if current is None:
        return "evidence.missing"
    record = read_record(current.der)
    if record.chains[-1][0].algorithm == algorithm:
        return "already"
    first = record.chains[0][0]
    catalogued = bytes.fromhex(document.sha256)
    if first.algorithm != "sha256" or catalogued not in (first.reduced or ((first.imprint,),))[0]:
        return "evidence.not_covered"
    data = document.read()
    if hashlib.sha256(data).digest() != catalogued:
        return "evidence.document_mismatch"
    new = hashlib.new(algorithm, data).digest()
    leaf = hash_tree_renewal_leaf(record, len(record.chains), algorithm, new)
    last = record.chains[-1][-1].token_der
    # as long as the record's own evidence is locked now (an upgrade extends it past the
    # catalogued date the caller knows)
    until = latest_of((document.retain_until, current.parts[0].lock.retain_until))
    assert until is not None  # the document's date is always there
    return Rehashed(document.key, token_sha256(last), leaf.hex(), until)


def _answered(document: Document, leaf: Leaf) -> Leaf:
    """A leaf computed elsewhere, taken only as this document's: its own key (the chain object
    is written under it) and a lock no shorter than the catalogued one."""
    if isinstance(leaf, str):
        return leaf
    if leaf.key == document.key and leaf.retain_until >= document.retain_until:
        return leaf
    return "cluster.wrong_answer"


def _chunks(items: Sequence[Document], size: int) -> Iterator[list[Document]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk

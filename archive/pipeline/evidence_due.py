"""When a tree's proof is due for renewal, and why (pure: tokens, dates and the weak table in).

The trees are the nightly runs' and the new chains of hash-tree renewals (:func:`current_trees`);
trees whose records all end in the same token form one :class:`Tip` (:func:`tips_of`), and each
tip is judged once (:func:`assess`): the TSA certificate of its token ends, or an algorithm it
relies on weakens, within the horizon. Missed deadlines come first: they fail the job.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import cms

from archive.pipeline.evidence_renewal_state import HashBatch, RenewalBatch, token_sha256
from archive.pipeline.evidence_state import Member, TreeIndex, longest
from archive.sign.tsa import token_certs, tst_info

EXPIRED, WEAK = "evidence.expired", "evidence.weak_algorithm"
EXPIRING, WEAKENING = "evidence.tsa_expiring", "evidence.weakening"
HASH_DUE = "evidence.hash_renewal_due"
NO_NEWER = "evidence.no_newer_tsa"
MISSED = frozenset({EXPIRED, WEAK})
UNRESOLVED = frozenset({*MISSED, HASH_DUE, NO_NEWER})


@dataclass(frozen=True)
class Tip:
    """Trees whose evidence records all end in the same token (their tree of trees)."""

    token: bytes
    algorithm: str  # the chain's hash: the leaf of the next renewal is H(token) in it
    trees: tuple[str, ...]
    records: int
    retain_until: datetime

    @property
    def leaf(self) -> bytes:
        return hashlib.new(self.algorithm, self.token).digest()


@dataclass(frozen=True)
class Due:
    tip: Tip
    reason: str
    detail: str
    by_timestamp: bool = True  # False: the hash tree's algorithm weakens (a new chain is due)


def tsa_cert(token_der: bytes) -> bytes:
    cert, _ = token_certs(cms.ContentInfo.load(token_der))
    der: bytes = cert.dump()
    return der


def newest(tokens: list[bytes]) -> bytes:
    return max(tokens, key=lambda t: tst_info(cms.ContentInfo.load(t))["gen_time"].native)


def no_gain(due: Due) -> Due:
    """A renewal token whose TSA certificate ends soon, stamped by the certificate the TSA stamps
    with today: renewing it would give a token that ends as soon, month after month. The TSA's
    certificate itself must be renewed (or another TSA configured): a failure, said loudly."""
    if due.reason not in (EXPIRING, EXPIRED):
        return due
    detail = f"{due.detail}; the TSA still stamps with that certificate: configure a newer one"
    return Due(due.tip, NO_NEWER, detail, by_timestamp=False)


def current_trees(trees: list[TreeIndex], hashed: list[HashBatch]) -> list[TreeIndex]:
    """The trees whose chains still carry some record's proof: a nightly tree, or the new
    chains of a hash-tree renewal (one tree per batch, its token shared by its documents),
    unless every document in it has since been given a newer chain."""
    later: dict[str, datetime] = {}  # document → when its newest chain began
    for batch in hashed:
        for entry in batch.entries:
            later[entry.key] = max(later.get(entry.key, batch.gen_time), batch.gen_time)
    kept = [t for t in trees if not all(m.key in later for m in t.members)]
    for batch in hashed:
        if any(later[e.key] <= batch.gen_time for e in batch.entries):
            members = tuple(Member(e.key, "", e.retain_until) for e in batch.entries)
            kept.append(
                TreeIndex(
                    f"hash-{batch.batch_id}",
                    batch.algorithm,
                    batch.root,
                    batch.gen_time,
                    "",
                    (),
                    members,
                    batch.token,
                )
            )
    return kept


def tips_of(trees: list[TreeIndex], batches: list[RenewalBatch]) -> list[Tip]:
    """Group the trees by their newest token: each tree's token, followed through every batch
    that renewed it (a batch's token is the newest of all it renewed)."""
    renewed_by = {r.token_sha256: b for b in batches for r in b.renewed}
    groups: dict[bytes, list[TreeIndex]] = {}
    algorithms: dict[bytes, str] = {}
    for tree in trees:
        token, algorithm = tree.token, tree.algorithm
        for _ in range(len(batches) + 1):  # a chain of renewals visits each batch once at most
            batch = renewed_by.get(token_sha256(token))
            if batch is None:
                break
            token, algorithm = batch.token, batch.algorithm
        groups.setdefault(token, []).append(tree)
        algorithms[token] = algorithm
    return [
        Tip(
            token=token,
            algorithm=algorithms[token],
            trees=tuple(sorted(t.tree_id for t in group)),
            records=sum(len(t.members) for t in group),
            retain_until=max(longest(t.members) for t in group),
        )
        for token, group in sorted(groups.items(), key=lambda kv: min(t.tree_id for t in kv[1]))
    ]


def assess(tip: Tip, now: datetime, horizon: datetime, weak: dict[str, datetime]) -> Due | None:
    """Why ``tip`` must be renewed now, or None. Missed deadlines first: they fail the job."""
    token = cms.ContentInfo.load(tip.token)
    tsa_cert, _ = token_certs(token)
    ends = tsa_cert["tbs_certificate"]["validity"]["not_after"].native
    signed_with = token["content"]["signer_infos"][0]["digest_algorithm"]["algorithm"].native

    def weak_at(algorithm: str, moment: datetime) -> bool:
        since = weak.get(algorithm)
        return since is not None and moment >= since

    if weak_at(tip.algorithm, now):
        detail = f"hash tree in {tip.algorithm}, weak since {weak[tip.algorithm]}"
        return Due(tip, WEAK, detail, by_timestamp=False)
    if weak_at(tip.algorithm, horizon):
        detail = f"hash tree in {tip.algorithm}, weak from {weak[tip.algorithm]}"
        return Due(tip, HASH_DUE, detail, by_timestamp=False)
    if weak_at(signed_with, now):
        return Due(tip, WEAK, f"token signed with {signed_with}, weak since {weak[signed_with]}")
    if ends <= now:
        return Due(tip, EXPIRED, f"TSA certificate ended {ends:%Y-%m-%d}: renewal is late")
    if ends <= horizon:
        return Due(tip, EXPIRING, f"TSA certificate ends {ends:%Y-%m-%d}")
    if weak_at(signed_with, horizon):
        return Due(
            tip, WEAKENING, f"token signed with {signed_with}, weak from {weak[signed_with]}"
        )
    return None

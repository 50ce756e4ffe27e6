"""Hash-tree renewal (SHA-256 → SHA-512), on the in-memory store with in-process TSAs: every
document re-hashed into a new chain under one TSA call per batch, valid where SHA-256 is weak;
a document that is not the catalogued one is left out and counted; a rerun adds nothing; a run
killed mid-way resumes with its saved token; the new chains are then renewed per tree of trees
and the retired nightly trees no longer ask for a renewal."""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import cms

from archive.core.sections import EvidenceSettings
from archive.evidence import DataObject, WeakAlgorithms, validate_evidence
from archive.pipeline.evidence_current import current_evidence
from archive.pipeline.evidence_rehash import Document, HashTreeRenewal, Leaf, Stored, new_leaf
from archive.pipeline.evidence_renewal import EvidenceRenewal
from archive.pipeline.evidence_renewal_state import CHAINS, HASH_BATCHES, HASH_DONE
from archive.store import SealedStore, evidence_key
from tests.support.renewal_world import NOW, TRUST, TSA2, world

AT = NOW + timedelta(days=2)
WEAK = WeakAlgorithms({"sha256": NOW + timedelta(days=30)})  # weak after the re-hash


class KilledError(Exception):
    """The unit-level stand-in for kill -9 at one step."""


def _documents(
    docs: dict[tuple[str, str], bytes], *, wrong: str | None = None, stored: bool = False
) -> list[Document]:
    out = []
    for (key, version), pdf in sorted(docs.items()):
        served = pdf + b"!" if key == wrong else pdf
        out.append(
            Document(
                evidence_key(object_key=key, version_id=version),
                hashlib.sha256(pdf).hexdigest(),
                NOW + timedelta(days=10_000),
                lambda served=served: served,  # type: ignore[misc]
                Stored("bucket", key, version, "enc") if stored else None,
            )
        )
    return out


def _job(
    sealed: SealedStore, calls: list[bytes], on_step: Callable[[str], None] | None = None
) -> HashTreeRenewal:
    def stamp(digest: bytes, algorithm: str) -> cms.ContentInfo:
        calls.append(digest)
        return TSA2.stamp(digest, algorithm, AT)

    return HashTreeRenewal(sealed, timestamper=stamp, check=TRUST, batch_size=5, on_step=on_step)


def _codes(sealed: SealedStore, docs: dict[tuple[str, str], bytes], at: datetime) -> Counter[str]:
    codes: Counter[str] = Counter()
    for (key, version), pdf in docs.items():
        current = current_evidence(sealed, object_key=key, version_id=version)
        assert current is not None
        verdict = validate_evidence(
            current.der, [DataObject(data=pdf)], as_of=at, check_timestamp=TRUST, weak=WEAK
        )
        codes[verdict.code or "ok"] += 1
    return codes


def _versions(sealed: SealedStore, prefix: str) -> Counter[str]:
    return Counter(v.key for v in sealed.list_versions(prefix))


def test_every_document_gets_a_new_chain_in_the_stronger_hash(tmp_path: Path) -> None:
    sealed, docs = world(tmp_path, trees=3)
    later = NOW + timedelta(days=60)
    assert _codes(sealed, docs, later) == {"evidence.weak_algorithm": 9}
    calls: list[bytes] = []
    wrong = sorted(docs)[4][0]
    out = _job(sealed, calls).renew(_documents(docs, wrong=wrong), "sha512", AT)
    assert (out.renewed, out.written, out.timestamps) == (8, 8, 2)  # batches of five: 2 calls
    assert out.failures() == {"evidence.document_mismatch": 1}  # never a chain over other bytes
    assert set(_versions(sealed, CHAINS).values()) == {1}
    codes = _codes(sealed, docs, later)
    assert codes == {"ok": 8, "evidence.weak_algorithm": 1}

    again = _job(sealed, calls).renew(_documents(docs), "sha512", AT)  # the right bytes now
    assert (again.already, again.renewed, again.timestamps, len(calls)) == (8, 1, 1, 3)
    assert _codes(sealed, docs, later) == {"ok": 9}
    noop = _job(sealed, calls).renew(_documents(docs), "sha512", AT)
    assert (noop.already, noop.renewed, noop.timestamps, noop.written) == (9, 0, 0, 0)

    # The nightly trees are retired; the new chains are trees of their own, renewed together.
    horizon_weak = ("sha256@" + (NOW + timedelta(days=30)).date().isoformat(),)
    renewal = EvidenceRenewal(
        sealed,
        settings=EvidenceSettings(weak_algorithms=horizon_weak, renew_before_days=3650),
        timestamper=lambda d, a: TSA2.stamp(d, a, AT),
        check=TRUST,
    )
    plan = renewal.plan(AT)
    assert (plan.trees, plan.records, plan.tokens) == (3, 9, 3)  # three re-hash batches
    assert {d.tip.algorithm for d in plan.due} == {"sha512"}
    assert plan.reasons() == {"evidence.tsa_expiring": 3}  # no hash_renewal_due left
    assert renewal.renew(AT).written == 3
    assert _codes(sealed, docs, later) == {"ok": 9}


@pytest.mark.parametrize(("step", "nth"), [("timestamped", 1), ("chain-written", 3)])
def test_a_hash_renewal_killed_mid_way_resumes_with_its_saved_token(
    tmp_path: Path, step: str, nth: int
) -> None:
    sealed, docs = world(tmp_path, trees=2)
    calls: list[bytes] = []
    seen: Counter[str] = Counter()

    def die(name: str) -> None:
        seen[name] += 1
        if name == step and seen[name] == nth:
            raise KilledError(step)

    with pytest.raises(KilledError):
        _job(sealed, calls, die).renew(_documents(docs), "sha512", AT)
    rerun = _job(sealed, calls).renew(_documents(docs), "sha512", AT)
    assert rerun.resumed == 1
    assert len(calls) == 2  # the first batch's saved token, one more for the second batch
    assert len(_versions(sealed, HASH_BATCHES)) == len(_versions(sealed, HASH_DONE)) == 2
    assert set(_versions(sealed, CHAINS).values()) == {1}
    assert len(_versions(sealed, CHAINS)) == 6
    assert _codes(sealed, docs, NOW + timedelta(days=60)) == {"ok": 6}


def test_documents_hashed_elsewhere_join_the_tree_and_a_lost_batch_is_left_for_the_rerun(
    tmp_path: Path,
) -> None:
    """The fan-out's contract (a Dask cluster in production, test_rehash_cluster.py): stored
    records go out, local files (manifests) are hashed here, a batch that came back as a
    reason code is counted under it and given no leaf, and the rerun completes it."""
    sealed, docs = world(tmp_path, trees=2)
    documents = _documents(docs, stored=True)
    local = documents[0] = dataclasses.replace(documents[0], stored=None)  # a manifest's file
    lost = {d.key for d in documents[1:3]}
    sent: list[str] = []

    def cluster(chunk: list[Document], algorithm: str) -> list[Leaf]:
        assert all(d.stored is not None for d in chunk)  # a worker reads only the store
        sent.extend(d.key for d in chunk)
        return [
            "cluster.batch_lost" if d.key in lost else new_leaf(sealed, d, algorithm) for d in chunk
        ]

    calls: list[bytes] = []

    def stamp(digest: bytes, algorithm: str) -> cms.ContentInfo:
        calls.append(digest)
        return TSA2.stamp(digest, algorithm, AT)

    job = HashTreeRenewal(sealed, timestamper=stamp, check=TRUST, fan_out=cluster)
    out = job.renew(documents, "sha512", AT)
    assert local.key not in sent
    assert len(sent) == len(documents) - 1
    assert out.failures() == {"cluster.batch_lost": 2}  # never renewed, never silent
    assert (out.renewed, out.written, len(calls)) == (4, 4, 1)  # the TSA once for the tree
    later = NOW + timedelta(days=60)
    assert _codes(sealed, docs, later) == {"ok": 4, "evidence.weak_algorithm": 2}

    lost.clear()
    again = HashTreeRenewal(
        sealed, timestamper=lambda d, a: TSA2.stamp(d, a, AT), check=TRUST, fan_out=cluster
    ).renew(documents, "sha512", AT)
    assert (again.already, again.renewed, again.failures()) == (4, 2, {})
    assert _codes(sealed, docs, later) == {"ok": 6}


def test_a_leaf_from_elsewhere_is_taken_only_for_its_own_document_and_lock(
    tmp_path: Path,
) -> None:
    """A worker's answer under another document's key would write a chain object there; one
    with a shorter lock would under-lock it: both refused and counted, never written."""
    sealed, docs = world(tmp_path, trees=1)
    documents = _documents(docs, stored=True)

    def confused(chunk: list[Document], algorithm: str) -> list[Leaf]:
        leaves = [new_leaf(sealed, d, algorithm) for d in chunk]
        first, second = leaves[0], leaves[1]
        assert not isinstance(first, str)
        assert not isinstance(second, str)
        short = chunk[1].retain_until - timedelta(days=1)  # under the catalogued date
        return [second, dataclasses.replace(second, retain_until=short), *leaves[2:]]

    out = HashTreeRenewal(
        sealed, timestamper=lambda d, a: TSA2.stamp(d, a, AT), check=TRUST, fan_out=confused
    ).renew(documents, "sha512", AT)
    assert out.failures() == {"cluster.wrong_answer": 2}
    assert (out.renewed, out.written) == (1, 1)

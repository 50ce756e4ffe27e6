"""Timestamp renewal per tree of trees, on the in-memory store with two in-process TSAs: the plan
writes nothing, one renewal is one TSA call for every due tree, the records read through
:func:`current_evidence` stay valid after the first TSA's certificate ends, a rerun renews
nothing twice, an interrupted renewal resumes with its saved token, and a late one fails loudly."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import cms

from archive.core.sections import EvidenceSettings
from archive.core.settings import SealSettings
from archive.evidence import DataObject, TsaTrust, WeakAlgorithms, validate_evidence
from archive.pipeline.evidence_current import current_evidence
from archive.pipeline.evidence_renewal import EvidenceRenewal, RenewalOutcome
from archive.pipeline.evidence_renewal_state import ATS, BATCHES, RENEWED
from archive.seal import seal
from archive.store import SealedStore
from tests.support.evidence import local_tsa
from tests.support.memstore import MemoryStore
from tests.support.renewal_world import LATER, NOW, TRUST, TSA1, TSA2, UNTIL, nightly, world


class DiedError(Exception):
    """A kill -9 at one step (the unit-level stand-in; the integration test kills a process)."""


def _renewal(
    sealed: SealedStore,
    calls: list[bytes],
    *,
    at: datetime,
    on_step: Callable[[str], None] | None = None,
    weak: tuple[str, ...] = (),
) -> EvidenceRenewal:
    """A renewal by TSA2 stamping at ``at``; ``calls`` collects what it was asked to stamp."""

    def stamp(digest: bytes, algorithm: str) -> cms.ContentInfo:
        calls.append(digest)
        return TSA2.stamp(digest, algorithm, at)

    return EvidenceRenewal(
        sealed,
        settings=EvidenceSettings(weak_algorithms=weak),
        timestamper=stamp,
        check=TRUST,
        on_step=on_step,
    )


def _verdicts(
    sealed: SealedStore, documents: dict[tuple[str, str], bytes], at: datetime
) -> Counter[str]:
    codes: Counter[str] = Counter()
    for (key, version), pdf in documents.items():
        current = current_evidence(sealed, object_key=key, version_id=version)
        assert current is not None
        verdict = validate_evidence(
            current.der,
            [DataObject(data=pdf)],
            as_of=at,
            check_timestamp=TRUST,
            weak=WeakAlgorithms(),
        )
        codes[verdict.code or "ok"] += 1
    return codes


def _versions(sealed: SealedStore, prefix: str) -> Counter[str]:
    return Counter(v.key for v in sealed.list_versions(prefix))


def test_one_tsa_call_renews_every_due_tree_and_keeps_their_records_valid(tmp_path: Path) -> None:
    sealed, documents = world(tmp_path, trees=3)
    assert _verdicts(sealed, documents, LATER) == {"evidence.expired": 9}  # without renewal

    calls: list[bytes] = []
    renewal = _renewal(sealed, calls, at=NOW + timedelta(days=1))
    before = _versions(sealed, "")
    plan = renewal.plan(NOW + timedelta(days=1))
    assert (plan.trees, plan.records, plan.tokens, plan.tsa_calls) == (3, 9, 3, 1)
    assert plan.reasons() == {"evidence.tsa_expiring": 3}
    assert _versions(sealed, "") == before
    assert calls == []

    done = renewal.renew(NOW + timedelta(days=1))
    assert (done.timestamps, done.tokens, done.trees, done.records, done.written) == (1, 3, 3, 9, 3)
    assert done.failures() == {}
    assert len(calls) == 1
    assert set(_versions(sealed, ATS).values()) == {1}
    assert len(_versions(sealed, ATS)) == 3
    assert _verdicts(sealed, documents, LATER) == {"ok": 9}
    current = current_evidence(sealed, object_key=next(iter(documents))[0], version_id="v0")
    assert current is not None
    assert current.renewals == 1
    assert current.locked_until(UNTIL) is None
    assert current.locked_until(UNTIL + timedelta(days=1)) is not None  # tree 0 is locked less

    again = renewal.renew(NOW + timedelta(days=2))
    assert (again.timestamps, again.written, len(calls)) == (0, 0, 1)  # nothing renewed twice


def test_the_next_renewal_writes_one_object_for_trees_renewed_together(tmp_path: Path) -> None:
    sealed, documents = world(tmp_path, trees=3)
    calls: list[bytes] = []
    _renewal(sealed, calls, at=NOW).renew(NOW)
    nine_years = NOW + timedelta(days=9 * 365 + 200)  # TSA2 ends within the horizon
    tsa3 = local_tsa(nine_years - timedelta(days=1), nine_years + timedelta(days=3650), "TSA 3")
    trust = TsaTrust([TSA1.root, TSA2.root, tsa3.root])
    renewal = EvidenceRenewal(
        sealed,
        settings=EvidenceSettings(),
        timestamper=lambda d, a: TSA2.stamp(d, a, nine_years),
        check=trust,
    )
    stuck = renewal.plan(nine_years)  # the TSA still stamps with TSA2's certificate
    assert stuck.reasons() == {"evidence.no_newer_tsa": 1}
    assert stuck.tsa_calls == 0
    # a nightly run shows the TSA now stamps with its new certificate
    nightly(sealed, tmp_path, tsa3, nine_years, trees=1, documents=dict(documents))
    renewal = EvidenceRenewal(
        sealed,
        settings=EvidenceSettings(),
        timestamper=lambda d, a: tsa3.stamp(d, a, nine_years),
        check=trust,
    )
    plan = renewal.plan(nine_years)
    assert (plan.tokens, plan.trees, plan.records, plan.tsa_calls) == (2, 4, 12, 1)
    assert plan.reasons() == {"evidence.tsa_expiring": 1}  # the new tree is not due
    done = renewal.renew(nine_years)
    assert (done.timestamps, done.written, done.trees) == (1, 1, 3)
    assert len(_versions(sealed, ATS)) == 4  # three for the first renewal, one for the second
    for (key, version), pdf in documents.items():
        current = current_evidence(sealed, object_key=key, version_id=version)
        assert current is not None
        assert current.renewals == 2
        verdict = validate_evidence(
            current.der,
            [DataObject(data=pdf)],
            as_of=nine_years + timedelta(days=400),
            check_timestamp=trust,
            weak=WeakAlgorithms(),
        )
        assert verdict.ok, verdict.detail


@pytest.mark.parametrize(
    ("step", "nth", "timestamps"),
    [("tree-built", 1, 1), ("timestamped", 1, 0), ("ats-written", 2, 0)],
)
def test_a_renewal_killed_at_each_step_resumes_without_duplicates(
    tmp_path: Path, step: str, nth: int, timestamps: int
) -> None:
    sealed, documents = world(tmp_path, trees=3)
    calls: list[bytes] = []
    seen = Counter[str]()

    def die(name: str) -> None:
        seen[name] += 1
        if name == step and seen[name] == nth:
            raise DiedError(step)

    with pytest.raises(DiedError):
        _renewal(sealed, calls, at=NOW, on_step=die).renew(NOW)
    rerun = _renewal(sealed, calls, at=NOW).renew(NOW)
    assert rerun.timestamps == timestamps
    assert rerun.resumed == (0 if step == "tree-built" else 1)
    assert len(_versions(sealed, BATCHES)) == len(_versions(sealed, RENEWED)) == 1
    assert set(_versions(sealed, ATS).values()) == {1}
    assert len(_versions(sealed, ATS)) == 3
    assert _verdicts(sealed, documents, LATER) == {"ok": 9}


def test_a_late_renewal_still_renews_and_fails_loudly(tmp_path: Path) -> None:
    sealed, documents = world(tmp_path, trees=2)
    calls: list[bytes] = []
    done = _renewal(sealed, calls, at=LATER).renew(LATER)
    assert done.timestamps == 1
    assert done.written == 2
    assert done.failures() == {"evidence.expired": 2}
    # renewed after TSA1 ended: the chain cannot be mended, and verification says so
    assert _verdicts(sealed, documents, LATER) == {"evidence.expired": 6}


def test_a_hash_algorithm_weakening_is_not_papered_over_with_a_timestamp(tmp_path: Path) -> None:
    sealed, _ = world(tmp_path, trees=2)
    calls: list[bytes] = []
    horizon_weak = ("sha256@" + (NOW + timedelta(days=100)).date().isoformat(),)
    done = _renewal(sealed, calls, at=NOW, weak=horizon_weak).renew(NOW)
    assert calls == []
    assert done.written == 0
    assert done.failures() == {"evidence.hash_renewal_due": 2}


def _tamper(sealed: SealedStore, key: str, plaintext: bytes) -> None:
    """An insider with the keys adds what the reader will take as the renewal at ``key``."""
    head = sealed.latest(key)
    assert head is not None
    inner = sealed.inner
    assert isinstance(inner, MemoryStore)
    data = seal(
        plaintext, identity=sealed.identity(key), keys=sealed._keys, settings=SealSettings()
    )
    inner.corrupt(key, version_id=head.version_id, data=data)


@pytest.mark.parametrize("attack", ["flip", "swap"])
def test_a_tampered_renewal_object_breaks_the_chain(tmp_path: Path, attack: str) -> None:
    sealed, documents = world(tmp_path, trees=3)
    _renewal(sealed, [], at=NOW).renew(NOW)
    objects = sorted(_versions(sealed, ATS))
    victim = sealed.latest(objects[0])
    assert victim is not None
    plaintext = sealed.get(objects[0], version_id=victim.version_id)
    if attack == "flip":
        forged = bytearray(plaintext)
        forged[12] ^= 0x01  # inside the reduced tree's first hash
        _tamper(sealed, objects[0], bytes(forged))
    else:  # the renewal of a tree that is not the first one's sibling
        others = [sealed.get(k, version_id=sealed.latest(k).version_id) for k in objects[1:]]  # type: ignore[union-attr]
        _tamper(sealed, objects[0], next(o for o in others if o != plaintext))
    assert _verdicts(sealed, documents, LATER) == {"ok": 6, "evidence.chain_broken": 3}


def test_outcome_failures_name_a_tsa_that_would_not_answer() -> None:
    out = RenewalOutcome(error="evidence.tsa_unavailable")
    assert out.failures() == {"evidence.tsa_unavailable": 1}

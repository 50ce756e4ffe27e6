"""Verification reads each timestamp renewal once per process (``renewals``, shared by the records
of a tree), and that never changes a record's evidence or verdict: the same DER as read alone,
a tampered document after good ones of its tree still caught, a forged renewal object still
breaks every chain it is in, and records of another tree get their own renewal."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path

from archive.core.sections import EvidenceSettings
from archive.core.settings import SealSettings
from archive.evidence import DataObject, WeakAlgorithms, validate_evidence
from archive.pipeline.evidence_current import Renewal, current_evidence
from archive.pipeline.evidence_renewal import EvidenceRenewal
from archive.pipeline.evidence_renewal_state import ATS
from archive.seal import seal
from archive.store import SealedStore
from tests.support.memstore import MemoryStore
from tests.support.renewal_world import LATER, NOW, TRUST, TSA2, world


class _Counting(SealedStore):
    """Counts ``latest`` (a HEAD) per key prefix."""

    heads: Counter[str]

    def latest(self, key: str):  # type: ignore[no-untyped-def]
        self.heads[key.split("/")[2] if key.startswith(ATS) else "other"] += 1
        return super().latest(key)


def _renewed(tmp_path: Path) -> tuple[SealedStore, dict[tuple[str, str], bytes]]:
    sealed, documents = world(tmp_path, trees=3)
    EvidenceRenewal(
        sealed,
        settings=EvidenceSettings(),
        timestamper=lambda d, a: TSA2.stamp(d, a, NOW),
        check=TRUST,
    ).renew(NOW)
    return sealed, documents


def _verdict(
    sealed: SealedStore,
    key: str,
    version: str,
    pdf: bytes,
    cache: dict[str, Renewal] | None,
    at: datetime,
) -> str:
    current = current_evidence(sealed, object_key=key, version_id=version, renewals=cache)
    assert current is not None
    verdict = validate_evidence(
        current.der, [DataObject(data=pdf)], as_of=at, check_timestamp=TRUST, weak=WeakAlgorithms()
    )
    return verdict.code or "ok"


def test_the_renewals_read_once_give_each_record_the_evidence_it_has_alone(tmp_path: Path) -> None:
    sealed, documents = _renewed(tmp_path)
    cache: dict[str, Renewal] = {}
    for key, version in documents:
        alone = current_evidence(sealed, object_key=key, version_id=version)
        shared = current_evidence(sealed, object_key=key, version_id=version, renewals=cache)
        assert alone is not None
        assert shared is not None
        assert (shared.der, shared.parts) == (alone.der, alone.parts)
        assert shared.renewals == 1
    # each tree's token has its renewal; the one renewal token (one TSA call for all) has none
    assert len(cache) == 4


def test_a_tampered_document_after_good_ones_of_its_tree_is_still_caught(tmp_path: Path) -> None:
    sealed, documents = _renewed(tmp_path)
    cache: dict[str, Renewal] = {}
    items = sorted(documents.items())
    codes = Counter(_verdict(sealed, k, v, pdf, cache, LATER) for (k, v), pdf in items)
    assert codes == {"ok": 9}
    (key, version), pdf = items[-1]  # its tree's renewal is in the cache
    codes = Counter([_verdict(sealed, key, version, pdf + b"%", cache, LATER)])
    assert "ok" not in codes


def test_records_of_each_tree_get_their_own_trees_renewal(tmp_path: Path) -> None:
    sealed, documents = _renewed(tmp_path)
    cache: dict[str, Renewal] = {}
    for (key, version), pdf in sorted(documents.items()):  # tree after tree, cache warm
        assert _verdict(sealed, key, version, pdf, cache, LATER) == "ok"
    for (key, version), pdf in sorted(documents.items(), reverse=True):
        assert _verdict(sealed, key, version, pdf, cache, LATER) == "ok"


def test_a_forged_renewal_breaks_every_chain_it_is_in_with_the_cache_too(tmp_path: Path) -> None:
    sealed, documents = _renewed(tmp_path)
    objects = sorted(v.key for v in sealed.list_versions(ATS))
    victim = sealed.latest(objects[0])
    assert victim is not None
    forged = bytearray(sealed.get(objects[0], version_id=victim.version_id))
    forged[12] ^= 0x01
    _tamper(sealed, objects[0], bytes(forged))
    cache: dict[str, Renewal] = {}
    codes = Counter(
        _verdict(sealed, k, v, pdf, cache, LATER) for (k, v), pdf in sorted(documents.items())
    )
    assert codes == {"ok": 6, "evidence.chain_broken": 3}


def _tamper(sealed: SealedStore, key: str, plaintext: bytes) -> None:
    """An insider with the keys replaces the renewal at ``key`` (below the S3 API)."""
    head = sealed.latest(key)
    assert head is not None
    inner = sealed.inner
    assert isinstance(inner, MemoryStore)
    data = seal(
        plaintext, identity=sealed.identity(key), keys=sealed._keys, settings=SealSettings()
    )
    inner.corrupt(key, version_id=head.version_id, data=data)


def test_one_head_per_renewed_token_instead_of_one_per_record(tmp_path: Path) -> None:
    sealed, documents = _renewed(tmp_path)
    counting = _Counting(sealed.inner, keys=sealed._keys, settings=sealed._settings)
    counting.heads = Counter()
    cache: dict[str, Renewal] = {}
    for key, version in documents:
        current_evidence(counting, object_key=key, version_id=version, renewals=cache)
    with_cache = sum(n for k, n in counting.heads.items() if k != "other")
    counting.heads = Counter()
    for key, version in documents:
        current_evidence(counting, object_key=key, version_id=version)
    alone = sum(n for k, n in counting.heads.items() if k != "other")
    assert (with_cache, alone) == (4, 18)  # 9 records x (their token's, the renewal's)

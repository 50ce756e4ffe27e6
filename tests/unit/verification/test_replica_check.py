"""The replica check of verification on in-memory stores (the real two-site run is
tests/integration/infra/test_second_site.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from archive.core.errors import StoreUnavailableError
from archive.store import PutResult
from tests.support.memstore import MemoryStore
from verification.config import HoldSet
from verification.replica import compare_sites
from verification.results import Status

UNTIL = datetime(2056, 1, 1, tzinfo=UTC)


class DownStore(MemoryStore):
    """A site that answers nothing (its network is cut)."""

    def put_locked(self, key: str, data: bytes, *, retain_until: datetime) -> PutResult:
        raise StoreUnavailableError("site down")

    def latest(self, key: str) -> None:
        raise StoreUnavailableError("site down")


def test_a_replica_that_does_not_answer_is_reported_and_the_check_goes_on() -> None:
    primary = MemoryStore()
    primary.put_locked("audit/sealed/v1/segments/1", b"x", retain_until=UNTIL)
    result, findings = compare_sites([], primary, DownStore(), holds=HoldSet())
    assert result.status is Status.INDETERMINATE
    assert result.reason_code == "replica.unreachable"
    assert [f.reason_code for f in findings] == ["replica.unreachable"]

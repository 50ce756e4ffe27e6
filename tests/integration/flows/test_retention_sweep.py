"""The monthly ``retention-sweep`` flow proposes and never deletes (Prefect, ephemeral mode)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from archive import wiring
from flows import retention as retention_flow
from infra.settings import AppSettings as Settings
from retention.register import Register
from tests.support.retention import Rec, archive_records, lock_of, wait_until

pytestmark = pytest.mark.integration


def test_the_sweep_proposes_expired_records_and_deletes_nothing(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    soon, far = now + timedelta(seconds=3), now + timedelta(days=2)
    discharged = datetime(2015, 1, 5, 3, tzinfo=UTC)
    recs = [
        Rec("E-S1", "BN-1", "ordinary", discharged, soon),
        Rec("E-S2", "BN-2", "ordinary", discharged, far),
    ]
    rows = archive_records(settings, recs)
    monkeypatch.setattr(retention_flow, "load_settings", lambda: settings)
    wait_until(soon)
    result = retention_flow.retention_sweep()
    assert result["records"] == 1
    assert result["totals"] == {"ordinary": 1}
    store = wiring.open_store(settings)
    assert all(lock_of(store, r.object_key) for r in rows)  # proposing deletes nothing
    register = Register.for_settings(settings, store)
    event = register.proposal_event(result["proposal_id"], "disposition.proposed")
    assert event is not None
    assert event["by"] == "retention-sweep"

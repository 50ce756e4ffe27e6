"""The policy classifier answers the retention register's extensions (``lock.extended``): read
once, chain checked; a register chained on by hand gives no record a retention it does not have,
and a classifier shipped to a worker carries the policy only."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from pathlib import Path

import pytest

from archive.pipeline.classifier import RetentionDecision
from retention.classifier import PolicyClassifier
from retention.errors import RetentionError
from retention.policy import load_policy
from retention.register import Register
from tests.support.chains import CHAIN_KEY, forge_next_segment
from tests.support.memstore import MemoryStore

NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
POLICY = load_policy()


def _extended(eid: str, new_class: str, until: datetime) -> dict[str, str]:
    return {
        "type": "lock.extended",
        "encounter_id": eid,
        "new_class": new_class,
        "new_until": until.isoformat(),
    }


def _register(directory: Path, store: MemoryStore) -> Register:
    return Register.open(directory, store, key=CHAIN_KEY)


def test_the_register_s_running_extensions_are_answered_destroyed_records_are_not(
    tmp_path: Path,
) -> None:
    register = _register(tmp_path / "retention", MemoryStore())
    register.append(
        [
            _extended("E-1", "mental", datetime(2035, 1, 1, tzinfo=UTC)),
            _extended("E-1", "death", datetime(2045, 1, 1, tzinfo=UTC)),  # the latest counts
            _extended("E-2", "death", datetime(2050, 1, 1, tzinfo=UTC)),
            {"type": "disposition.destroyed", "encounters": ["E-2"], "versions": []},
        ],
        now=NOW,
    )
    classifier = PolicyClassifier.from_register(POLICY, register)
    assert classifier.extensions(["E-1", "E-2", "E-3"]) == {
        "E-1": RetentionDecision("death", datetime(2045, 1, 1, tzinfo=UTC))
    }


@pytest.mark.parametrize("move_head", [True, False], ids=["head-rewritten", "head-untouched"])
def test_a_forged_extension_gives_no_retention_the_run_stops_instead(
    tmp_path: Path, move_head: bool
) -> None:
    """An insider without the keyring chains a ``lock.extended`` on by hand (so that a record
    past its class would be archived again and locked for decades): the register does not
    verify, and no classifier (so no run) is built on it."""
    store, directory = MemoryStore(), tmp_path / "retention"
    _register(directory, store).append(
        [_extended("E-1", "death", datetime(2045, 1, 1, tzinfo=UTC))], now=NOW
    )
    forge_next_segment(
        directory, _extended("E-9", "death", datetime(2090, 1, 1, tzinfo=UTC)), move_head=move_head
    )
    with pytest.raises(RetentionError, match="does not verify") as raised:
        PolicyClassifier.from_register(POLICY, _register(directory, store))  # the next run
    assert "E-9" not in str(raised.value)


def test_a_classifier_shipped_to_a_worker_holds_the_policy_only(tmp_path: Path) -> None:
    register = _register(tmp_path / "retention", MemoryStore())
    register.append([_extended("E-1", "death", datetime(2045, 1, 1, tzinfo=UTC))], now=NOW)
    classifier = PolicyClassifier.from_register(POLICY, register)
    shipped = pickle.loads(pickle.dumps(classifier))  # noqa: S301 - pickled by this test
    assert shipped.policy == classifier.policy
    assert shipped.extensions(["E-1"]) == {}  # the amendment's bundle carries its own
    assert classifier.extensions(["E-1"])  # the run's process keeps them

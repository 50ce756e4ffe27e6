"""``emr-archive lease show``: each facility's current lease (the newest generation, not an older
one), with its state, run id, machine and times; a bad code refused before the store is
opened. (The store is the in-memory twin, holding leases taken the way runs take them.)"""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from archive.core.errors import ArchiveError
from archive.pipeline.lease import RunLease, lease_key
from infra.cli import cli
from infra.cli.commands import lease as lease_cmd
from tests.support.memstore import MemoryStore

TTL = timedelta(minutes=10)


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> MemoryStore:
    bucket = MemoryStore()
    monkeypatch.setattr(lease_cmd, "open_lease_store", lambda settings: bucket)
    return bucket


def _show(tmp_path: Path, *args: str) -> Result:
    env = {"EMR_ARCHIVE_DATA_DIR": str(tmp_path)}
    return CliRunner().invoke(cli, ["lease", "show", *args], env=env, prog_name="emr-archive")


def _take(store: MemoryStore, facility: str, run_id: str, now: datetime) -> RunLease:
    return RunLease.acquire(store, facility=facility, run_id=run_id, now=now, ttl=TTL)


def test_each_facility_s_current_lease_is_shown(tmp_path: Path, store: MemoryStore) -> None:
    # The command judges leases by the real clock: taken now, not when the module was imported
    # (the whole suite collects first and runs this one perhaps twenty minutes later).
    NOW = datetime.now(UTC).replace(microsecond=0)  # noqa: N806 - the module's name for it
    held = _take(store, "79001", "20261123T010000Z-aaaaaa", NOW - timedelta(minutes=2))
    first = held.record.encode()
    held.renew(NOW, TTL)  # a newer generation: the one shown
    assert store.create(lease_key("79001", 1), first)  # as if pruning it had failed
    _take(store, "79002", "20261123T000000Z-bbbbbb", NOW - timedelta(hours=1)).release(
        NOW - timedelta(minutes=55)  # within its lease: the run ended
    )
    _take(store, "79003", "20261122T000000Z-cccccc", NOW - timedelta(days=1))  # its machine died
    result = _show(tmp_path)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    host = socket.gethostname()
    assert lines[0].split()[:2] == ["79001", "held"]
    assert f"run 20261123T010000Z-aaaaaa on {host}" in lines[0]
    assert f"expires {NOW + TTL:%Y-%m-%d %H:%M:%S}Z" in lines[0]  # the renewal's, not the first
    assert f"acquired {NOW - timedelta(minutes=2):%Y-%m-%d %H:%M:%S}Z" in lines[0]
    assert lines[1].split()[:2] == ["79002", "released"]
    assert lines[2].split()[:2] == ["79003", "expired"]
    assert len(lines) == 3


def test_one_facility_or_none_is_shown(tmp_path: Path, store: MemoryStore) -> None:
    NOW = datetime.now(UTC).replace(microsecond=0)  # noqa: N806
    _take(store, "79001", "run-a", NOW)
    _take(store, "790011", "run-b", NOW)  # a code that starts like the other is not its lease
    only = _show(tmp_path, "--facility", "79001")
    assert only.exit_code == 0, only.output
    assert [line.split()[0] for line in only.output.splitlines()] == ["79001"]
    assert _show(tmp_path, "--facility", "79009").output == "facility 79009: never leased\n"


def test_a_bad_code_is_refused_before_the_store_is_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(settings: object) -> MemoryStore:
        raise AssertionError("the store was opened")

    monkeypatch.setattr(lease_cmd, "open_lease_store", unreachable)
    result = _show(tmp_path, "--facility", "../79001")
    assert result.exit_code == ArchiveError.exit_code, result.output
    assert "is not 1-32 letters" in result.stderr
    assert "Traceback" not in result.output

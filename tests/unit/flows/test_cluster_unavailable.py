"""A scheduler address nobody answers at: every command that would send work to the cluster
refuses before any work, in one line naming the address and what to check, exit status 5 (not a
run waiting forever, not a traceback)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from archive.core.errors import ClusterUnavailableError
from flows.cluster import ensure_cluster
from infra.cli import cli


def _closed_port() -> int:
    """A loopback port nobody listens on (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_scheduler_is_a_named_error_within_the_timeout() -> None:
    address = f"tcp://127.0.0.1:{_closed_port()}"
    began = time.monotonic()
    with pytest.raises(ClusterUnavailableError) as refused:
        ensure_cluster(address, timeout_s=1.0)
    assert time.monotonic() - began < 10
    assert address in str(refused.value)
    assert "EMR_ARCHIVE_CLUSTER__SCHEDULER_ADDRESS" in str(refused.value)
    assert refused.value.exit_code == 5


@pytest.mark.parametrize(
    "argv",
    [["archive"], ["verify", "--mode", "full"], ["evidence", "renew", "--hash", "sha512"]],
    ids=["archive", "verify", "rehash"],
)
def test_every_command_that_fans_out_refuses_in_one_line_before_any_work(
    tmp_path: Path, argv: list[str]
) -> None:
    address = f"tcp://127.0.0.1:{_closed_port()}"
    env = {
        "EMR_ARCHIVE_DATA_DIR": str(tmp_path),
        "EMR_ARCHIVE_CLUSTER__SCHEDULER_ADDRESS": address,
        "EMR_ARCHIVE_CLUSTER__CONNECT_TIMEOUT_S": "1",
    }
    result = CliRunner().invoke(cli, argv, env=env)
    assert result.exit_code == 5, result.output
    assert result.stderr.startswith(f"cluster unavailable: the Dask scheduler at {address} ")
    assert result.stderr.count("\n") == 1  # one line, no traceback
    assert not (tmp_path / "catalog").exists()  # nothing was started

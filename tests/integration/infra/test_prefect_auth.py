"""The stack's Prefect API answers only callers holding the auth string `stack up` generated:
without it any local user could start ``nightly-archive`` on data of their choosing."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra import prefect_server
from infra.ports import free_port_block, throwaway_settings
from infra.settings import AppSettings as Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    base = throwaway_settings(tmp_path_factory.mktemp("prefect-auth"))
    (port,) = free_port_block(1, grpc_offset=0)
    stack = base.stack.model_copy(update={"prefect_server": True, "prefect_port": port})
    settings = base.model_copy(update={"stack": stack})
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    prefect_server.start(settings)
    try:
        yield settings
    finally:
        prefect_server.stop(settings)


def _read_flows(api_url: str, *, auth: str | None) -> int:
    request = urllib.request.Request(  # noqa: S310 - loopback URL of the test's own server
        f"{api_url}/flows/filter",
        data=json.dumps({}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    if auth is not None:
        token = base64.b64encode(auth.encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def test_prefect_api_without_the_auth_string_is_refused(server: Settings) -> None:
    assert _read_flows(server.prefect_api_url, auth=None) == 401
    assert _read_flows(server.prefect_api_url, auth="emr-archive:guessed") == 401


def test_prefect_api_with_the_stack_auth_string_is_accepted(server: Settings) -> None:
    secret = prefect_server.auth_file(server)
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert _read_flows(server.prefect_api_url, auth=secret.read_text().strip()) == 200


def test_our_prefect_clients_send_the_auth_string(server: Settings) -> None:
    # What the CLI, `serve` and the demo do before their first flow runs; in a child process,
    # because Prefect keeps its API settings for the life of a process.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(prefect_server.environment(server))
    probe = (
        "from prefect.client.orchestration import get_client\n"
        "with get_client(sync_client=True) as client:\n"
        "    print(len(client.read_flows()))\n"  # a 401 raises
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "0"
    env.pop("PREFECT_API_AUTH_STRING")
    refused = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
    )
    assert refused.returncode != 0
    assert "401" in refused.stderr


def test_the_auth_string_is_never_logged(server: Settings) -> None:
    secret = prefect_server.auth_file(server).read_text().strip()
    password = secret.split(":", 1)[1]
    logs = [p for p in Path(server.data_dir).rglob("*.log") if p.is_file()]
    assert logs, "the server writes a log"
    for log in logs:
        assert password not in log.read_text(encoding="utf-8", errors="replace")


def test_a_server_running_without_the_current_string_is_restarted_by_stack_up(
    server: Settings,
) -> None:
    # A server started before the string existed (or with a lost one) would keep answering
    # whoever it answered before; `stack up` (prefect_server.start) restarts it with a new one.
    old = prefect_server.auth_file(server).read_text().strip()
    prefect_server.auth_file(server).unlink()
    prefect_server.start(server)
    new = prefect_server.auth_file(server).read_text().strip()
    assert new != old
    assert _read_flows(server.prefect_api_url, auth=old) == 401
    assert _read_flows(server.prefect_api_url, auth=new) == 200

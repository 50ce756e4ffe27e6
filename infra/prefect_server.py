"""The local Prefect server of the embedded stack (sqlite under ``var/prefect``, loopback only).

A real server keeps run history and fires schedules; Prefect's ephemeral mode (a temporary API
inside each process) is slow to start and forgets runs, so it is only the fallback when no
server runs (research/stack-notes.md).
"""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request

from archive.core.settings import Settings
from infra.errors import StackError
from infra.process import ManagedProcess


def process(settings: Settings) -> ManagedProcess:
    return ManagedProcess(name="prefect-server", run_dir=settings.stack_dir)


def environment(settings: Settings) -> dict[str, str]:
    """Variables that point Prefect at our server (when it runs) with telemetry off."""
    env = {
        "PREFECT_HOME": str((settings.data_dir / "prefect").resolve()),
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "true",
    }
    if process(settings).pid() is not None:
        env["PREFECT_API_URL"] = settings.prefect_api_url
    return env


def apply_environment(settings: Settings) -> None:
    """Point this process's Prefect at the stack; call before the first flow runs."""
    os.environ.update(environment(settings))


def start(settings: Settings, *, timeout_s: float = 90.0) -> None:
    proc = process(settings)
    if proc.pid() is None:
        home = settings.data_dir / "prefect"
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(environment(settings))
        env.pop("PREFECT_API_URL", None)
        # `python -m prefect`, not the console script: /proc shows a script's interpreter first,
        # and the pid file must match the command line exactly.
        argv = [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(settings.stack.prefect_port),
        ]
        proc.start(argv, env=env)
    _wait_healthy(proc, settings.prefect_api_url, timeout_s=timeout_s)


def stop(settings: Settings) -> bool:
    return process(settings).stop()


def healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:  # noqa: S310 - loopback URL built from settings
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _wait_healthy(proc: ManagedProcess, api_url: str, *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.pid() is None:
            raise StackError(f"the Prefect server exited during start-up:\n{proc.log_tail()}")
        if healthy(api_url):
            return
        time.sleep(0.5)
    raise StackError(
        f"the Prefect server did not answer in {timeout_s:.0f} s; log: {proc.log_file}"
    )

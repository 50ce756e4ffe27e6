"""The local Prefect server of the embedded stack (sqlite under ``var/prefect``, loopback only).

A real server keeps run history and fires schedules; Prefect's ephemeral mode (a temporary API
inside each process) is slow to start and forgets runs, so it is only the fallback when no
server runs (research/stack-notes.md).

The API is authenticated (HTTP Basic, Prefect's ``PREFECT_SERVER_API_AUTH_STRING``): whoever can
reach it can start ``nightly-archive``, and the hospital key would sign and lock what that run
reads. ``stack up`` generates the string once into ``<data_dir>/prefect/api-auth`` (0600, in the
0700 data dir) and hands it to the server and to our own clients through the environment only; it
is never printed or logged. Health probes stay open (Prefect exempts ``/health``).
"""

from __future__ import annotations

import os
import secrets
import stat
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from archive.core.atomic import write_private
from archive.core.settings import Settings
from infra.errors import StackError
from infra.process import ManagedProcess


def process(settings: Settings) -> ManagedProcess:
    return ManagedProcess(name="prefect-server", run_dir=settings.stack_dir)


def auth_file(settings: Settings) -> Path:
    """Where the API's auth string lives (``user:password``, 0600)."""
    return settings.data_dir / "prefect" / "api-auth"


def environment(settings: Settings) -> dict[str, str]:
    """Variables that point Prefect at our server (when it runs), with its auth string, and
    telemetry off."""
    env = {
        "PREFECT_HOME": str((settings.data_dir / "prefect").resolve()),
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "true",
    }
    if process(settings).pid() is not None:
        env["PREFECT_API_URL"] = settings.prefect_api_url
        env["PREFECT_API_AUTH_STRING"] = _read_auth(settings)
    return env


def apply_environment(settings: Settings) -> None:
    """Point this process's Prefect at the stack; call before the first flow runs."""
    os.environ.update(environment(settings))


def start(settings: Settings, *, timeout_s: float = 90.0) -> None:
    proc = process(settings)
    home = settings.data_dir / "prefect"
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    if _ensure_auth(settings) and proc.pid() is not None:
        # A server started before the string existed is open to every local user: restart it.
        proc.stop()
    if proc.pid() is None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(environment(settings))
        env.pop("PREFECT_API_URL", None)
        env["PREFECT_SERVER_API_AUTH_STRING"] = _read_auth(settings)
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


def _ensure_auth(settings: Settings) -> bool:
    """Create the auth string if there is none; True when it was created now."""
    path = auth_file(settings)
    if path.exists():
        return False
    # Prefect compares the whole ``user:password`` string; 256 random bits, URL-safe.
    write_private(path, f"emr-archive:{secrets.token_urlsafe(32)}\n")
    return True


def _read_auth(settings: Settings) -> str:
    path = auth_file(settings)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        text = path.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise StackError(
            f"the Prefect API's auth string {path} is unreadable ({type(e).__name__}): "
            "run `emr-archive stack up` (it creates one and restarts the server)"
        ) from e
    if mode & 0o077:
        raise StackError(f"{path} is readable by other users (mode {mode:o}): chmod 600 it")
    if ":" not in text:
        raise StackError(f"{path} is not a user:password string: delete it and restart the stack")
    return text


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

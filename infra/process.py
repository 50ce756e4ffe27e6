"""Background processes of the embedded stack, tracked by pid files.

``stack down`` must stop only what ``stack up`` started, so each process gets a pid file that
records its pid and command line; a pid whose ``/proc/<pid>/cmdline`` no longer matches (the
process died and the number was reused) is treated as not running and never signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from archive.core.atomic import write_atomic
from infra.errors import StackError


@dataclass(frozen=True, slots=True)
class ManagedProcess:
    """One named process of the stack, with its pid file and log under ``run_dir``."""

    name: str
    run_dir: Path

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.run_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        """The pid if our process is alive, else None (a stale pid file is removed)."""
        try:
            record = json.loads(self.pid_file.read_text(encoding="utf-8"))
            pid, argv = int(record["pid"]), list(record["argv"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None
        if _cmdline(pid) == argv:
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def start(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> int:
        """Start ``argv`` detached (own session), unless it already runs; return its pid."""
        running = self.pid()
        if running is not None:
            return running
        self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        log = open(self.log_file, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            child = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                start_new_session=True,  # survives the CLI; not killed by its Ctrl-C
                close_fds=True,
            )
        except OSError as e:
            raise StackError(f"cannot start {self.name} ({argv[0]}): {e}") from e
        finally:
            log.close()
        # The argv we asked for, not /proc's view: right after fork, before exec, /proc still
        # shows the parent's command line.
        record = {"pid": child.pid, "argv": list(argv)}
        write_atomic(self.pid_file, json.dumps(record))
        _await_exec(child, list(argv))
        return child.pid

    def stop(self, *, timeout_s: float = 15.0) -> bool:
        """SIGTERM, then SIGKILL after ``timeout_s``. True if something was stopped."""
        pid = self.pid()
        if pid is None:
            return False
        _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _alive(pid):
            _reap(pid)
            time.sleep(0.1)
        if _alive(pid):
            _signal(pid, signal.SIGKILL)
            while _alive(pid):
                _reap(pid)
                time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_file.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _await_exec(child: subprocess.Popen[bytes], argv: list[str], timeout_s: float = 5.0) -> None:
    # Until the child has exec'd, /proc shows the parent's command line and pid() would call
    # the new process "not ours"; wait for the switch (or for an early exit) before returning.
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and child.poll() is None:
        if _cmdline(child.pid) == argv:
            return
        time.sleep(0.01)


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if not raw:
        return None  # a zombie has an empty command line
    return [part.decode("utf-8", "replace") for part in raw.rstrip(b"\0").split(b"\0")]


def _alive(pid: int) -> bool:
    return _cmdline(pid) is not None


def _reap(pid: int) -> None:
    # Our own children (tests start the stack in-process) become zombies until waited for.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)

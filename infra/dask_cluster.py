"""A Dask cluster on loopback, for tests, the bench and trying the fan-out on one machine:
``dask scheduler`` and ``dask worker`` processes, started as subprocesses and stopped by their
process ids. On several machines, start the same two commands by hand (README "Scaling out").

Workers run without a nanny (``--no-nanny``) so that the process id is the worker itself: a
``kill -9`` kills it for good, as a machine that goes away would, instead of the nanny starting a
new one. Each worker imports this checkout's code (``PYTHONPATH``) and gets only the environment
it is given: no ``EMR_ARCHIVE_*`` or ``AWS_*`` variable of the caller leaks into it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from distributed import Client

_REPO = Path(__file__).resolve().parents[1]  # the scheduler and workers import this checkout
_BIN = Path(sys.executable).parent


@dataclass
class DaskCluster:
    directory: Path
    scheduler: subprocess.Popen[bytes]
    address: str
    workers: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @classmethod
    def start(cls, directory: Path, timeout: float = 30.0) -> DaskCluster:
        directory.mkdir(parents=True, exist_ok=True)
        info = directory / "scheduler.json"
        log = (directory / "scheduler.log").open("wb")
        argv = [str(_BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0"]
        argv += ["--no-dashboard", "--scheduler-file", str(info)]
        process = subprocess.Popen(argv, stdout=log, stderr=log, env=_base_env(directory))
        deadline = time.monotonic() + timeout
        while not (address := _address(info)):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"dask scheduler did not start: see {log.name}")
            time.sleep(0.1)
        return cls(directory, process, address)

    def add_worker(
        self, *, env: dict[str, str] | None = None, hide: Path | None = None, timeout: float = 60.0
    ) -> int:
        """Start one worker process (one thread); return its process id once it has joined.
        ``hide``: a directory this worker does not have (an empty file system is mounted over
        it in the worker's own mount namespace, as on a machine where it is not mounted)."""
        before = len(self.identities())
        n = len(self.workers)
        home = self.directory / f"worker-{n}"
        home.mkdir(exist_ok=True)
        log = (self.directory / f"worker-{n}.log").open("wb")
        worker = [str(_BIN / "dask"), "worker", self.address, "--nworkers", "1", "--nthreads", "1"]
        worker += ["--no-nanny", "--no-dashboard", "--local-directory", str(home)]
        argv = worker
        if hide is not None:  # unshare and sh exec the worker: the process id stays its own
            mask = 'mount -t tmpfs -o size=1m none "$0" && exec "$@"'
            argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", mask, str(hide)]
            argv += worker
        environment = {**_base_env(home), **(env or {})}
        process = subprocess.Popen(argv, stdout=log, stderr=log, env=environment, cwd=home)
        self.workers[process.pid] = process
        deadline = time.monotonic() + timeout
        while len(self.identities()) <= before:
            if process.poll() is not None or time.monotonic() > deadline:
                self.stop_worker(process.pid)
                raise RuntimeError(f"dask worker did not join: see {log.name}")
            time.sleep(0.2)
        return process.pid

    def identities(self) -> dict[str, int]:
        """Worker address -> process id, as the scheduler knows them."""
        with Client(self.address, timeout=10) as client:  # type: ignore[no-untyped-call]
            pids: dict[str, int] = client.run(os.getpid)
        return pids

    def kill_worker(self, pid: int) -> None:
        """``kill -9``: the machine is gone mid-task."""
        os.kill(pid, signal.SIGKILL)
        self.workers.pop(pid).wait(timeout=10)

    def stop_worker(self, pid: int) -> None:
        process = self.workers.pop(pid)
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def stop(self) -> None:
        """Every worker and the scheduler: asked to stop all at once, killed after 10 s."""
        processes = [*self.workers.values(), self.scheduler]
        self.workers.clear()
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _address(scheduler_file: Path) -> str:
    """The scheduler's address once it has written its file (not atomically: retry)."""
    try:
        return str(json.loads(scheduler_file.read_text())["address"])
    except (OSError, ValueError, KeyError):
        return ""


def _base_env(home: Path) -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "TZ", "PREFECT_API_URL")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        {
            "HOME": str(home),
            "PYTHONPATH": str(_REPO),
            "PREFECT_HOME": str(home / "prefect"),
            "DASK_DISTRIBUTED__WORKER__DAEMON": "False",
        }
    )
    return env

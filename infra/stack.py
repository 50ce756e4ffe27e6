"""``emr-archive stack up | down | status``: the embedded development stack on one machine.

Up starts, in order: OpenBao (only for ``keys.provider = "transit"`` without a ``transit_url``),
the key store (created once), the development PKI and its TSA/OCSP/CRL service
(only when no production signer/TSA is configured), and SeaweedFS with the Object-Lock bucket
(only when no S3 endpoint is configured), and a second SeaweedFS as the replica site (only when
``[replica] enabled`` without an endpoint; its ports are the primary's + ``replica_port_offset``).
Every step is idempotent, so ``up`` twice is harmless;
``down`` stops exactly the processes whose pid files ``up`` wrote.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from archive.core.errors import ArchiveError
from archive.core.settings import Settings
from archive.seal import init_keys, open_keys
from archive.store import S3ObjectStore, Site
from infra import openbao, pki, pki_service, prefect_server, seaweed, softhsm
from infra.errors import StackError
from infra.process import ManagedProcess


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    name: str
    state: str  # "running", "stopped", "external", "ready", "missing"
    detail: str
    healthy: bool


def pki_process(settings: Settings) -> ManagedProcess:
    return ManagedProcess(name="pki-service", run_dir=settings.stack_dir)


def up(settings: Settings) -> list[ComponentStatus]:
    # Certificates are issued relative to the wall clock: the TSA service stamps with it too.
    moment = datetime.now(UTC)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.data_dir, 0o700)
    if settings.uses_embedded_openbao:
        openbao.start(settings)
    init_keys(settings)
    if _needs_dev_pki(settings):
        _start_pki(settings, now=moment)
        if settings.signer.dev_token:
            softhsm.ensure_dev_token(settings)
    if settings.uses_embedded_s3:
        seaweed.start(settings)
    else:
        S3ObjectStore.from_settings(settings).ensure_compliant()
    if settings.uses_embedded_replica:
        seaweed.start(settings, site="replica")
    elif settings.replica.enabled:
        S3ObjectStore.from_settings(settings, site="replica").ensure_compliant()
    if settings.stack.prefect_server:
        prefect_server.start(settings)
    return status(settings)


def down(settings: Settings) -> list[str]:
    stopped = []
    procs = (
        prefect_server.process(settings),
        seaweed.process(settings, "replica"),
        seaweed.process(settings),
        pki_process(settings),
        openbao.process(settings),
    )
    for proc in procs:
        if proc.stop():
            stopped.append(proc.name)
    return stopped


def status(settings: Settings) -> list[ComponentStatus]:
    rows = [_keyring_status(settings), _pki_status(settings), _s3_status(settings)]
    if settings.replica.enabled:
        rows.append(_s3_status(settings, site="replica"))
    if settings.stack.prefect_server:
        rows.append(_prefect_status(settings))
    return rows


def _prefect_status(settings: Settings) -> ComponentStatus:
    pid = prefect_server.process(settings).pid()
    if pid is None:
        detail = "flows fall back to Prefect's ephemeral mode; run `emr-archive stack up`"
        return ComponentStatus("prefect", "stopped", detail, healthy=False)
    url = settings.prefect_api_url
    if not prefect_server.healthy(url):
        return ComponentStatus("prefect", "running", f"pid {pid}, {url} not answering", False)
    ui = url.removesuffix("/api")
    return ComponentStatus("prefect", "running", f"pid {pid}, UI {ui}", healthy=True)


def _needs_dev_pki(settings: Settings) -> bool:
    # Settings guarantee signer, TSA and trust roots are all set (production) or all unset.
    return settings.uses_dev_pki


def _start_pki(settings: Settings, *, now: datetime) -> None:
    port = settings.stack.pki_port
    pki.ensure_dev_pki(settings.pki_dir, port=port, now=now)
    proc = pki_process(settings)
    argv = [
        sys.executable,
        "-m",
        "infra.pki_service",
        "--pki-dir",
        str(settings.pki_dir),
        "--port",
        str(port),
    ]
    proc.start(argv)
    _wait_pki_ready(proc, settings.tsa_url)
    _wait_pki_ready(proc, settings.dev_archive_tsa_url)  # the renewals' TSA (issue #12)


def _wait_pki_ready(proc: ManagedProcess, tsa_url: str, *, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.pid() is None:
            raise StackError(f"the PKI service exited during start-up:\n{proc.log_tail()}")
        try:
            pki_service.probe(tsa_url)
            return
        except ArchiveError as e:
            if time.monotonic() > deadline:
                raise StackError(
                    f"the PKI service did not answer in {timeout_s:.0f} s ({e}); "
                    f"log: {proc.log_file}"
                ) from e
            time.sleep(0.2)


def _keyring_status(settings: Settings) -> ComponentStatus:
    try:
        current = open_keys(settings).current()
    except ArchiveError as e:
        return ComponentStatus("keyring", "missing", str(e), healthy=False)
    where = settings.transit_url if settings.keys.provider == "transit" else settings.keyring_dir
    detail = f"{where} (current KEK {current.kek_id} v{current.version})"
    return ComponentStatus("keyring", "ready", detail, healthy=True)


def _pki_status(settings: Settings) -> ComponentStatus:
    if not _needs_dev_pki(settings):
        return ComponentStatus("pki", "external", f"TSA {settings.tsa_url}", healthy=True)
    pid = pki_process(settings).pid()
    if pid is None:
        return ComponentStatus("pki-service", "stopped", "run `emr-archive stack up`", False)
    try:
        pki_service.probe(settings.tsa_url)
    except ArchiveError as e:
        return ComponentStatus("pki-service", "running", f"pid {pid}, unhealthy: {e}", False)
    tsas = f"TSA {settings.tsa_url}, archive TSA {settings.dev_archive_tsa_url}"
    return ComponentStatus("pki-service", "running", f"pid {pid}, {tsas}", True)


def _s3_status(settings: Settings, *, site: Site = "primary") -> ComponentStatus:
    primary = site == "primary"
    endpoint = settings.s3_endpoint_url if primary else settings.replica_endpoint_url
    bucket = settings.s3.bucket if primary else settings.replica.bucket
    where = f"{endpoint} bucket {bucket}"
    embedded = settings.uses_embedded_s3 if primary else settings.uses_embedded_replica
    proc = seaweed.process(settings, site)
    if embedded:
        pid = proc.pid()
        if pid is None:
            return ComponentStatus(proc.name, "stopped", "run `emr-archive stack up`", False)
        name, state, where = proc.name, "running", f"pid {pid}, {where}"
    else:
        name, state = ("s3" if primary else "s3-replica"), "external"
    try:
        store = S3ObjectStore.from_settings(settings, site=site)
        store.ensure_compliant()
        seaweed.health_check(store)
    except ArchiveError as e:
        return ComponentStatus(name, state, f"{where}: {e}", healthy=False)
    return ComponentStatus(name, state, f"{where} (Object Lock on, PUT+GET ok)", healthy=True)

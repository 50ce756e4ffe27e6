"""Free loopback ports for a throwaway embedded stack (tests, benchmarks); SeaweedFS also needs
port + 10000 for its gRPC side."""

from __future__ import annotations

import random
import socket
from pathlib import Path
from typing import Any

from archive.core.settings import StackSettings
from infra.settings import AppSettings, load_app_settings


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_block(count: int, *, grpc_offset: int = 10000) -> list[int]:
    """``count`` consecutive ports p with p and p + grpc_offset free, below the kernel's
    ephemeral range (32768+) so an outgoing connection cannot take one between check and use."""
    rng = random.Random()  # noqa: S311 - spreads port choices; nothing secret
    for _ in range(200):
        base = rng.randrange(10000, 32768 - grpc_offset - count)
        ports = list(range(base, base + count))
        if all(_free(p) and _free(p + grpc_offset) for p in ports):
            return ports
    raise RuntimeError("no free block of loopback ports found")


def throwaway_settings(data_dir: Path, **overrides: Any) -> AppSettings:
    """Settings for a stack of its own under ``data_dir``, on free ports, without the Prefect
    server (flows then run in Prefect's ephemeral mode; the server costs ~20 s to start)."""
    # OpenBao's API and its cluster port (API + 1), then five for a replica site (offset 8).
    s3_port, master, volume, filer, admin, pki_port, openbao_port, *_ = free_port_block(13)
    stack = StackSettings(
        s3_port=s3_port,
        master_port=master,
        volume_port=volume,
        filer_port=filer,
        admin_port=admin,
        pki_port=pki_port,
        openbao_port=openbao_port,
        replica_port_offset=8,
        prefect_server=False,
        # SeaweedFS gives each bucket a volume of its own and refuses a new bucket's first
        # write ("no free volumes left", answered InternalError) past this count; a test
        # session makes one bucket per test (over 100 by now).
        volume_max=1000,
    )
    return load_app_settings(data_dir=data_dir, stack=stack, **overrides)

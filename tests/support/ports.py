"""Free loopback ports for the stack a test session starts (SeaweedFS also needs port + 10000)."""

from __future__ import annotations

import random
import socket


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
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(10000, 32768 - grpc_offset - count)
        ports = list(range(base, base + count))
        if all(_free(p) and _free(p + grpc_offset) for p in ports):
            return ports
    raise RuntimeError("no free block of loopback ports found")

"""RFC 3161 timestamps from the development PKI service: many in flight beside one at a time.

Run by hand: ``python -m bench.bench_pki [--requests 64] [--threads 16]``. Nothing is asserted; the
machine is shared and noisy. tests/integration/infra/test_pki.py asserts that the service serves
requests in parallel at all; this measures what that buys. The baseline is the same requests sent
one at a time: the signing stage keeps up to eight timestamp requests in flight per batch, so a
threaded service should answer several times the baseline rate, bounded by the CPU it spends
signing each timestamp.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from bench.common import table
from infra.errors import PkiError
from infra.pki import DevPki, ensure_dev_pki, probe
from infra.ports import free_port_block
from infra.process import ManagedProcess


@contextlib.contextmanager
def pki_service() -> Iterator[DevPki]:
    """A fresh development PKI in a temporary directory, served by ``python -m infra.pki_service``
    in a process of its own (as the stack runs it), on a free loopback port."""
    with tempfile.TemporaryDirectory(prefix="emr-bench-pki-") as tmp:
        [port] = free_port_block(1)
        pki = ensure_dev_pki(Path(tmp) / "pki", port=port, now=datetime.now(UTC))
        proc = ManagedProcess(name="pki-service", run_dir=Path(tmp) / "run")
        argv = [sys.executable, "-m", "infra.pki_service", "--pki-dir", str(pki.pki_dir)]
        proc.start([*argv, "--port", str(port)])
        try:
            _wait_until_answering(proc, pki.tsa_url)
            yield pki
        finally:
            proc.stop()


def _wait_until_answering(proc: ManagedProcess, tsa_url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            probe(tsa_url, timeout_s=2)
            return
        except PkiError:
            if proc.pid() is None or time.monotonic() > deadline:
                raise SystemExit(f"the PKI service did not come up:\n{proc.log_tail()}") from None
            time.sleep(0.1)


def one_at_a_time(tsa_url: str, requests: int) -> float:
    start = time.perf_counter()
    for _ in range(requests):
        probe(tsa_url)
    return time.perf_counter() - start


def in_flight(tsa_url: str, requests: int, threads: int) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda _: probe(tsa_url), range(requests)))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--threads", type=int, default=16, help="requests in flight")
    args = parser.parse_args()
    n = args.requests
    with pki_service() as pki:
        one_at_a_time(pki.tsa_url, 4)  # first requests (imports, the service's caches) left out
        serial = one_at_a_time(pki.tsa_url, n)
        parallel = in_flight(pki.tsa_url, n, args.threads)
    print(f"{n} timestamp requests to the development TSA on loopback\n")
    print(
        table(
            [
                ("requests", "per request", "throughput", "baseline (one at a time)", "speed-up"),
                (
                    f"{args.threads} in flight",
                    f"{parallel * 1000 / n:.1f} ms",
                    f"{n / parallel:,.0f}/s",
                    f"{n / serial:,.0f}/s ({serial * 1000 / n:.1f} ms)",
                    f"{serial / parallel:.1f}x",
                ),
            ]
        )
    )


if __name__ == "__main__":
    main()

"""Seal+PUT and GET+unseal against the embedded SeaweedFS, beside raw PUT/GET of the same bytes.

Run by hand (`make bench`); the machine is shared and noisy, so nothing here is asserted.
Target (issue #2): sealing and unsealing add less than 10% to raw PUT/GET time for ~60 KB
documents.
"""

from __future__ import annotations

import argparse
import os
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from archive.seal import LocalKeyring, ObjectIdentity, seal, unseal
from archive.store import S3ObjectStore
from bench.common import peak_rss_mib, table, throwaway_stack
from infra.settings import AppSettings as Settings


def documents(count: int, size: int) -> list[bytes]:
    # A signed PDF is mostly already-compressed streams plus some text: 75% random, 25% text.
    text = ("Tóm tắt hồ sơ bệnh án — chẩn đoán ra viện J18.9 Viêm phổi. " * 64).encode()
    docs = []
    for _ in range(count):
        random_part = os.urandom(size * 3 // 4)
        docs.append(random_part + text[: size - len(random_part)])
    return docs


@dataclass
class Timing:
    seal: float = 0.0
    put: float = 0.0
    get: float = 0.0
    unseal: float = 0.0
    raw_put: float = 0.0
    raw_get: float = 0.0


def run(settings: Settings, *, count: int, size: int, threads: int) -> Timing:
    store = S3ObjectStore.from_settings(settings)
    keys = LocalKeyring.open_or_create(settings.keyring_dir, kek_id="bench")
    until = datetime.now(UTC) + timedelta(days=1)
    docs = documents(count, size)
    prefix = f"bench/{secrets.token_hex(4)}"
    t = Timing()

    def ident(i: int) -> ObjectIdentity:
        return ObjectIdentity(store.bucket, f"{prefix}/sealed/{i:06d}", f"rec-{i}")

    # Sealing is CPU work measured alone; PUT/GET are I/O measured with `threads` in flight.
    start = time.perf_counter()
    sealed = [
        seal(d, identity=ident(i), keys=keys, settings=settings.seal) for i, d in enumerate(docs)
    ]
    t.seal = time.perf_counter() - start

    def timed_pool(fn: Callable[[int], None], items: range) -> float:
        begin = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(fn, items))
        return time.perf_counter() - begin

    raw_versions: dict[int, str] = {}
    sealed_versions: dict[int, str] = {}

    def raw_put(i: int) -> None:
        raw_versions[i] = store.put_locked(
            f"{prefix}/raw/{i:06d}", sealed[i], retain_until=until
        ).version_id

    def sealed_put(i: int) -> None:
        sealed_versions[i] = store.put_locked(
            ident(i).key, sealed[i], retain_until=until
        ).version_id

    t.raw_put = timed_pool(raw_put, range(count))
    t.put = timed_pool(sealed_put, range(count))
    fetched: dict[int, bytes] = {}

    def raw_get(i: int) -> None:
        store.get(f"{prefix}/raw/{i:06d}", version_id=raw_versions[i])

    def sealed_get(i: int) -> None:
        fetched[i] = store.get(ident(i).key, version_id=sealed_versions[i])

    t.raw_get = timed_pool(raw_get, range(count))
    t.get = timed_pool(sealed_get, range(count))
    start = time.perf_counter()
    for i in range(count):
        if unseal(fetched[i], identity=ident(i), keys=keys, settings=settings.seal) != docs[i]:
            raise SystemExit(f"round trip failed for document {i}")
    t.unseal = time.perf_counter() - start
    return t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--size", type=int, default=60 * 1024)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    with throwaway_stack() as settings:
        settings.keyring_dir.mkdir(parents=True, exist_ok=True)
        t = run(settings, count=args.documents, size=args.size, threads=args.threads)
    n = args.documents

    def rate(seconds: float) -> str:
        return f"{n / seconds:,.0f}/s" if seconds else "-"

    def ms(seconds: float) -> str:
        return f"{seconds * 1000 / n:.2f} ms"

    write_overhead = t.seal / t.raw_put * 100
    read_overhead = t.unseal / t.raw_get * 100
    print(f"{n} documents of {args.size // 1024} KiB, {args.threads} concurrent requests\n")
    print(
        table(
            [
                ("stage", "per document", "throughput", "baseline (raw)", "baseline per doc"),
                ("seal (CPU)", ms(t.seal), rate(t.seal), "", ""),
                ("PUT sealed", ms(t.put), rate(t.put), rate(t.raw_put), ms(t.raw_put)),
                ("GET sealed", ms(t.get), rate(t.get), rate(t.raw_get), ms(t.raw_get)),
                ("unseal (CPU)", ms(t.unseal), rate(t.unseal), "", ""),
                (
                    "seal + PUT",
                    ms(t.seal + t.put),
                    rate(t.seal + t.put),
                    rate(t.raw_put),
                    ms(t.raw_put),
                ),
                (
                    "GET + unseal",
                    ms(t.get + t.unseal),
                    rate(t.get + t.unseal),
                    rate(t.raw_get),
                    ms(t.raw_get),
                ),
            ]
        )
    )
    print(
        f"\nsealing adds {write_overhead:.1f}% to raw PUT time, unsealing {read_overhead:.1f}% "
        f"to raw GET time (target < 10%); peak RSS {peak_rss_mib():.0f} MiB"
    )


if __name__ == "__main__":
    main()

"""Seal+PUT and GET+unseal per key provider: the local keyring, OpenBao transit with batch keys,
transit wrapping every data key by itself (batch_key_objects=1, the design we did not take), and
a SoftHSM2 token wrapping every data key on the token (pkcs11); and the cost of one pseudonym
(an HMAC: in memory, or on the token for pkcs11).

Run by hand; the machine is shared and noisy, so nothing here is asserted. Issue #13's targets:
transit with batching or caching, so a night of 10,000 records does not make 10,000 sequential
round trips; pkcs11 within 10 % of the local keyring. Each provider seals and opens
``--documents`` fresh ~60 KB documents with ``--threads`` in flight (as the nightly worker's
store pool does); a fresh key store per phase, so the read side starts with a cold cache like a
new verification process.

``--only local,pkcs11 --rounds 3`` runs just those two, in turn, three times, and shows each
one's median: the load of a shared machine moves more between phases than the providers differ.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from archive.core.settings import KeySettings
from archive.seal import ArchiveKeys, ObjectIdentity, TransitKeyring, init_keys, open_keys
from archive.seal import seal as seal_bytes
from archive.seal import unseal as unseal_bytes
from archive.store import S3ObjectStore
from bench.bench_store import documents
from bench.common import table, throwaway_stack
from infra import openbao, softhsm
from infra.settings import AppSettings as Settings


def run(settings: Settings, docs: list[bytes], threads: int) -> tuple[float, float, int]:
    """Seconds for seal+PUT and GET+unseal of every document, and transit round trips."""
    store = S3ObjectStore.from_settings(settings)
    until = datetime.now(UTC) + timedelta(days=1)
    prefix = f"bench-kek/{secrets.token_hex(4)}"
    writer, versions = open_keys(settings), {}

    def ident(i: int) -> ObjectIdentity:
        return ObjectIdentity(store.bucket, f"{prefix}/{i:06d}", f"rec-{i}")

    def put(i: int) -> None:
        sealed = seal_bytes(docs[i], identity=ident(i), keys=writer, settings=settings.seal)
        versions[i] = store.put_locked(ident(i).key, sealed, retain_until=until).version_id

    reader = open_keys(settings)

    def get(i: int) -> None:
        sealed = store.get(ident(i).key, version_id=versions[i])
        if unseal_bytes(sealed, identity=ident(i), keys=reader, settings=settings.seal) != docs[i]:
            raise SystemExit(f"round trip failed for document {i}")

    write = _timed(put, len(docs), threads)
    read = _timed(get, len(docs), threads)
    return write, read, _trips(writer) + _trips(reader)


def _timed(fn: Callable[[int], None], count: int, threads: int) -> float:
    begin = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(fn, range(count)))
    return time.perf_counter() - begin


def pseudonym_us(settings: Settings, count: int = 2000) -> float:
    keys = open_keys(settings)
    begin = time.perf_counter()
    for i in range(count):
        keys.pseudonym(f"0791{i:08d}")
    return (time.perf_counter() - begin) / count * 1e6


def _on_token(base: Settings) -> Settings:
    """A SoftHSM2 token of its own under the throwaway data dir, the keys made on it."""
    conf = softhsm.write_config(Path(base.data_dir, "softhsm"))
    token = softhsm.create_token(conf, "bench-kek")
    keys = KeySettings(
        provider="pkcs11",
        keyring_dir=Path(base.data_dir, "p"),
        pkcs11_module=token.module,
        pkcs11_token_label=token.label,
        pkcs11_pin_file=token.pin_file,
    )
    settings = base.model_copy(update={"keys": keys})
    init_keys(settings)
    return settings


def _trips(keys: ArchiveKeys) -> int:
    return keys.round_trips if isinstance(keys, TransitKeyring) else 0


PROVIDERS = ("local", "transit", "transit-each", "pkcs11")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--size", type=int, default=60 * 1024)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument(
        "--only", default=",".join(PROVIDERS), help=f"comma-separated, of {', '.join(PROVIDERS)}"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the providers in turn this many times and show each one's median: on a "
        "shared machine the load moves between two phases more than the providers differ",
    )
    args = parser.parse_args()
    chosen = args.only.split(",")
    if unknown := set(chosen) - set(PROVIDERS):
        parser.error(f"unknown providers: {', '.join(sorted(unknown))}")
    docs = documents(args.documents, args.size)
    with throwaway_stack() as base:
        settings = _providers(base, chosen)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in settings}
        trips: dict[str, int] = {}
        for _ in range(args.rounds):
            for name, provider in settings.items():
                write, read, trips[name] = run(provider, docs, args.threads)
                times[name].append((write, read))
        print(table(_rows(settings, times, trips, args.documents)))


def _providers(base: Settings, chosen: list[str]) -> dict[str, Settings]:
    made: dict[str, Settings] = {}
    if "local" in chosen:
        local = base.model_copy(update={"keys": KeySettings(keyring_dir=Path(base.data_dir, "l"))})
        init_keys(local)
        made["local keyring"] = local
    if {"transit", "transit-each"} & set(chosen):
        transit = base.model_copy(update={"keys": KeySettings(provider="transit")})
        openbao.start(transit)
        init_keys(transit)
        if "transit" in chosen:
            made["transit, batch keys"] = transit
        if "transit-each" in chosen:
            made["transit, a call per object"] = transit.model_copy(
                update={"keys": transit.keys.model_copy(update={"batch_key_objects": 1})}
            )
    if "pkcs11" in chosen:
        made["pkcs11 (SoftHSM2)"] = _on_token(base)
    return made


def _rows(
    settings: dict[str, Settings],
    times: dict[str, list[tuple[float, float]]],
    trips: dict[str, int],
    n: int,
) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [
        ("provider", "seal+PUT", "GET+unseal", "round trips", "vs first", "pseudonym")
    ]
    baseline = 0.0
    for name, provider in settings.items():
        write = statistics.median(w for w, _ in times[name])
        read = statistics.median(r for _, r in times[name])
        baseline = baseline or write + read
        rows.append(
            (
                name,
                f"{write * 1000 / n:.2f} ms/doc ({n / write:,.0f}/s)",
                f"{read * 1000 / n:.2f} ms/doc ({n / read:,.0f}/s)",
                str(trips[name]),
                f"{(write + read) / baseline * 100 - 100:+.0f} %",
                f"{pseudonym_us(provider):.0f} µs",
            )
        )
    return rows


if __name__ == "__main__":
    main()

"""Signing with the key on a PKCS#11 token (SoftHSM2) beside the same key in memory (PKCS#12).

Run by hand: ``python -m bench.bench_sign_token [--documents 40] [--rounds 3]``. Both sign the
same rendered sample documents with the signing stage (``DocumentSigner.sign_batch``, documents
concurrently) at PAdES B-LTA against the development PKI service on loopback; the only
difference is where the RSA-2048 key is. Rounds alternate between the keys and the median round
is kept (the machine is shared: a best-of-N on CPU with the wall of that round compared noise).
"in the key" is the time spent inside the raw signature per document (for the token: the
executor hop and C_Sign). Then the sessions a SoftHSM2 token allows one process, and two worker
processes each with its own session. Target (issue 13): the token within 20 % of PKCS#12.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import multiprocessing
import os
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from archive.sign import DocumentSigner, SignedDocument, SignerConfig, init_worker, sign_in_worker
from archive.sign.config import Pkcs11Config
from bench.bench_pki import pki_service
from bench.bench_sign import Timing, _config, sample_documents, timed
from bench.common import table
from infra import softhsm
from infra.pki import DevPki

KEY_ID = bytes.fromhex("b1")


def token_config(pki: DevPki, base: Path) -> SignerConfig:
    conf = softhsm.write_config(base)
    token = softhsm.create_token(conf, "bench")
    softhsm.import_signer(
        token, pki.signer.p12.read_bytes(), pki.signer.read_password(), key_id=KEY_ID
    )
    p11 = Pkcs11Config(
        module=token.module,
        key_id=KEY_ID,
        cert_id=KEY_ID,
        token_label="bench",  # noqa: S106 - a label
        pin_file=token.pin_file,
    )
    return dataclasses.replace(_config(pki), pkcs12_path=None, password_file=None, pkcs11=p11)


def rounds_of(signer: DocumentSigner, pdfs: list[bytes]) -> Timing:
    outcomes: list[object] = []

    def sign(out: list[object] = outcomes) -> None:
        out.extend(signer.sign_batch(pdfs))

    timing = timed(sign, len(pdfs))
    if not all(isinstance(o, SignedDocument) for o in outcomes):
        raise SystemExit(f"signing failed: {outcomes}")
    return timing


def alternating(
    configs: dict[str, SignerConfig], pdfs: list[bytes], rounds: int
) -> dict[str, Timing]:
    """Rounds alternate between the keys (A B A B ...) so the shared machine's load hits both
    alike; each key's median round by wall time."""
    signers = {name: DocumentSigner.create(config) for name, config in configs.items()}
    for signer in signers.values():
        signer.sign_batch(pdfs[:1])  # first-use costs out of the timing
    timings: dict[str, list[Timing]] = {name: [] for name in configs}
    for _ in range(rounds):
        for name, signer in signers.items():
            timings[name].append(rounds_of(signer, pdfs))
    return {name: sorted(t, key=lambda t: t.wall)[(len(t) - 1) // 2] for name, t in timings.items()}


def key_time(config: SignerConfig, pdfs: list[bytes]) -> float:
    """Milliseconds per document inside the key's raw signature (for the token: the executor
    hop and C_Sign), measured around ``async_sign_raw`` of the stage's own signer."""
    signer = DocumentSigner.create(config)
    signer.sign_batch(pdfs[:1])
    pyhanko_signer = signer.key.pyhanko_signer()
    inner = pyhanko_signer.async_sign_raw
    spent: list[float] = []

    async def probe(data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        start = time.perf_counter()
        try:
            return await inner(data, digest_algorithm, dry_run)
        finally:
            if not dry_run:
                spent.append(time.perf_counter() - start)

    pyhanko_signer.async_sign_raw = probe  # type: ignore[method-assign]
    rounds_of(signer, pdfs)
    return 1000 * sum(spent) / len(pdfs)


def sessions_allowed(config: Pkcs11Config, limit: int = 256) -> int:
    import pkcs11

    token = pkcs11.lib(str(config.module)).get_token(token_label=config.token_label)
    opened: list[pkcs11.Session] = []
    try:
        while len(opened) < limit:
            opened.append(token.open())
    except pkcs11.PKCS11Error:
        pass
    count = len(opened)
    for s in opened[1:]:  # keep the first: closing the last session logs the process out
        s.close()
    return count


def two_workers(
    configs: dict[str, SignerConfig], pdfs: list[bytes], rounds: int
) -> dict[str, float]:
    """Documents per second in two worker processes (each its own key, or token session);
    rounds alternate between the keys, median round."""
    context = multiprocessing.get_context("spawn")
    rates: dict[str, list[float]] = {name: [] for name in configs}
    with contextlib.ExitStack() as stack:
        pools = {
            name: stack.enter_context(
                ProcessPoolExecutor(2, context, initializer=init_worker, initargs=(config,))
            )
            for name, config in configs.items()
        }
        for pool in pools.values():
            list(pool.map(sign_in_worker, [pdfs[:2], pdfs[:2]]))  # warm both workers
        half = len(pdfs) // 2
        for _ in range(rounds):
            for name, pool in pools.items():
                start = time.perf_counter()
                list(pool.map(sign_in_worker, [pdfs[:half], pdfs[half:]]))
                rates[name].append(len(pdfs) / (time.perf_counter() - start))
    return {name: statistics.median_low(r) for name, r in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    pdfs = sample_documents(args.documents, 5)
    with pki_service() as pki, tempfile.TemporaryDirectory(prefix="emr-bench-hsm-") as tmp:
        softhsm.use_config(softhsm.write_config(Path(tmp)))
        on_token = token_config(pki, Path(tmp))
        configs = {"PKCS#12": _config(pki), "SoftHSM2": on_token}
        one = alternating(configs, pdfs, args.rounds)
        inside = {name: key_time(config, pdfs) for name, config in configs.items()}
        assert on_token.pkcs11 is not None
        sessions = sessions_allowed(on_token.pkcs11)
        two = two_workers(configs, pdfs, args.rounds)
    print(
        f"{len(pdfs)} documents, PAdES B-LTA, median of {args.rounds} alternating rounds, "
        f"{os.cpu_count()} cores\n"
    )
    rows = [("key", "CPU ms/doc", "wall ms/doc", "in the key ms/doc", "1 process", "2 workers")]
    for name, t in one.items():
        rows.append(
            (name, t.cpu_ms(), t.wall_ms(), f"{inside[name]:.1f}", t.rate(), f"{two[name]:,.1f}/s")
        )
    print(table(rows))
    p12, tok = one["PKCS#12"], one["SoftHSM2"]
    print(
        f"\ntoken/PKCS#12: CPU {tok.cpu / p12.cpu:.2f}x, wall {tok.wall / p12.wall:.2f}x, "
        f"2 workers {two['PKCS#12'] / two['SoftHSM2']:.2f}x; "
        f"sessions one process opened on the token: {sessions} (stopped at 256)"
    )


if __name__ == "__main__":
    main()

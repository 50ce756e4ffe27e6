"""Signing with the key on a PKCS#11 token (SoftHSM2) beside the same key in memory (PKCS#12).

Run by hand: ``python -m bench.bench_sign_token [--documents 40] [--rounds 3]``. Both sign the
same rendered sample documents with the signing stage (``DocumentSigner.sign_batch``, documents
concurrently) at PAdES B-LTA against the development PKI service on loopback; the only
difference is where the RSA-2048 key is. Rounds alternate, best round kept (the machine is
shared). Then the sessions a SoftHSM2 token allows one process, and two worker processes each
with its own session. Target (issue 13): the token within 20 % of PKCS#12.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import os
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


def best(config: SignerConfig, pdfs: list[bytes], rounds: int) -> Timing:
    signer = DocumentSigner.create(config)
    signer.sign_batch(pdfs[:1])  # first-use costs out of the timing
    timings = []
    for _ in range(rounds):
        outcomes: list[object] = []

        def sign(out: list[object] = outcomes) -> None:
            out.extend(signer.sign_batch(pdfs))

        timings.append(timed(sign, len(pdfs)))
        if not all(isinstance(o, SignedDocument) for o in outcomes):
            raise SystemExit(f"signing failed: {outcomes}")
    return min(timings, key=lambda t: t.cpu)


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


def two_workers(config: SignerConfig, pdfs: list[bytes]) -> float:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, context, initializer=init_worker, initargs=(config,)) as pool:
        list(pool.map(sign_in_worker, [pdfs[:2], pdfs[:2]]))  # warm both workers
        half = len(pdfs) // 2
        start = time.perf_counter()
        list(pool.map(sign_in_worker, [pdfs[:half], pdfs[half:]]))
        return len(pdfs) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    pdfs = sample_documents(args.documents, 5)
    with pki_service() as pki, tempfile.TemporaryDirectory(prefix="emr-bench-hsm-") as tmp:
        softhsm.use_config(softhsm.write_config(Path(tmp)))
        on_token = token_config(pki, Path(tmp))
        in_memory = _config(pki)
        p12 = best(in_memory, pdfs, args.rounds)
        tok = best(on_token, pdfs, args.rounds)
        assert on_token.pkcs11 is not None
        sessions = sessions_allowed(on_token.pkcs11)
        p12_two, tok_two = two_workers(in_memory, pdfs), two_workers(on_token, pdfs)
    print(f"{len(pdfs)} documents, PAdES B-LTA, best of {args.rounds}, {os.cpu_count()} cores\n")
    print(
        table(
            [
                ("key", "CPU ms/doc", "wall ms/doc", "1 process", "2 workers"),
                ("PKCS#12", p12.cpu_ms(), p12.wall_ms(), p12.rate(), f"{p12_two:,.1f}/s"),
                ("SoftHSM2", tok.cpu_ms(), tok.wall_ms(), tok.rate(), f"{tok_two:,.1f}/s"),
            ]
        )
    )
    print(
        f"\ntoken/PKCS#12: CPU {tok.cpu / p12.cpu:.2f}x, wall {tok.wall / p12.wall:.2f}x; "
        f"sessions one process opened on the token: {sessions} (stopped at 256)"
    )


if __name__ == "__main__":
    main()

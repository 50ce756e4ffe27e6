"""Timestamp renewal of the evidence of 1,000,000 records (issue #12: <= 100 TSA calls, <= 10 min),
and the rate of the rare hash-tree renewal.

Run by hand: ``python -m bench.bench_renewal [RECORDS] [PER_TREE]`` (default 1,000,000 records in
trees of 1,000, i.e. a thousand nightly runs); ``python -m bench.bench_renewal rehash [RECORDS]``
(default 2,000) stores that many sealed ~60 KB documents with their evidence records (one
nightly tree) and times their re-hashing into SHA-512 chains, which reads and opens each one.

A throwaway embedded stack (SeaweedFS, the development PKI and TSA, a keyring); the trees are
synthetic (random document digests, each tree with its own real token from the development TSA,
saved as the nightly run saves its tree index), the renewal is the real job
(:func:`archive.pipeline.evidence_wiring.open_renewal`): plan, one TSA call, one sealed locked
ATS object per tree. The setup is not timed.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from archive.pipeline.evidence_rehash import Document, HashTreeRenewal
from archive.pipeline.evidence_state import TREES, Member, TreeIndex, longest
from archive.pipeline.evidence_wiring import open_renewal, open_stage, renewal_tsa, tsa_timestamper
from archive.seal import ObjectIdentity, open_keys, seal, unseal
from archive.sign import RetryPolicy, SignerConfig, load_trust_roots
from archive.sign.tsa import tst_info
from archive.store import S3ObjectStore, SealedStore, evidence_key
from bench.common import peak_rss_mib, table, throwaway_stack
from infra.settings import AppSettings as Settings


def synthetic_trees(settings: Settings, records: int, per_tree: int) -> int:
    """Save ``records // per_tree`` tree indexes, each with its own token; returns the count."""
    store = S3ObjectStore.from_settings(settings)
    sealed = SealedStore.for_settings(settings, store, keys=open_keys(settings))
    roots = load_trust_roots(SignerConfig.from_settings(settings).tsa_trust_roots)
    stamp = tsa_timestamper(settings.tsa_url, RetryPolicy(), roots=roots)
    until = datetime.now(UTC) + timedelta(days=365 * 30)
    trees = records // per_tree

    def one(n: int) -> None:
        members = tuple(
            Member(
                f"evidence/v1/records/BV01/{n % 256:02x}/r1{n:019x}{i:019x}/v1.ers",
                hashlib.sha256(os.urandom(32)).hexdigest(),
                until + timedelta(days=n % 365),
            )
            for i in range(per_tree)
        )
        root = hashlib.sha256(f"tree {n}".encode()).digest()  # not the members' root: unused
        token = stamp(root)
        index = TreeIndex(
            tree_id=f"run-{n:06d}",
            algorithm="sha256",
            root=root.hex(),
            gen_time=tst_info(token)["gen_time"].native,
            tsa_cert_sha256="0" * 64,
            covers=(f"run-{n:06d}",),
            members=members,
            token=token.dump(),
        )
        sealed.put_locked(
            TREES + index.tree_id + ".json", index.encode(), retain_until=longest(members)
        )

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(trees)))
    return trees


def documents_with_evidence(settings: Settings, count: int) -> list[Document]:
    """``count`` sealed documents stored as records are, and one nightly tree over them."""
    store = S3ObjectStore.from_settings(settings)
    keys = open_keys(settings)
    until = datetime.now(UTC) + timedelta(days=365 * 30)
    text = ("Tóm tắt hồ sơ bệnh án — chẩn đoán ra viện J18.9 Viêm phổi. " * 256).encode()

    def one(n: int) -> tuple[Member, Document]:
        pdf = os.urandom(45_000) + text[:15_000]  # ~60 KB, a quarter compressible like a PDF
        key = f"records/v1/BV01/{n % 256:02x}/r1{n:038x}"
        identity = ObjectIdentity(store.bucket, key, f"bench-{n}")
        put = store.put_locked(
            key, seal(pdf, identity=identity, keys=keys, settings=settings.seal), retain_until=until
        )

        def read() -> bytes:
            sealed = store.get(key, version_id=put.version_id)
            return unseal(sealed, identity=identity, keys=keys, settings=settings.seal)

        ev = evidence_key(object_key=key, version_id=put.version_id)
        sha = hashlib.sha256(pdf).hexdigest()
        return Member(ev, sha, until), Document(ev, sha, until, read)

    with ThreadPoolExecutor(8) as pool:
        pairs = list(pool.map(one, range(count)))
    stage = open_stage(settings, store, keys)
    stage.hold("bench", [m for m, _ in pairs])
    stage.complete("bench", now=datetime.now(UTC), extra=lambda _run: [])
    return [d for _, d in pairs]


def rehash(count: int) -> None:
    with throwaway_stack(full=True) as settings:
        start = time.perf_counter()
        documents = documents_with_evidence(settings, count)
        setup = time.perf_counter() - start
        store = S3ObjectStore.from_settings(settings)
        stamp, check = renewal_tsa(settings)
        job = HashTreeRenewal(
            SealedStore.for_settings(settings, store, keys=open_keys(settings)),
            timestamper=stamp,
            check=check,
        )
        start = time.perf_counter()
        out = job.renew(documents, "sha512", datetime.now(UTC))
        seconds = time.perf_counter() - start
        print(f"setup (not timed): {count} sealed documents and their tree in {setup:.1f} s")
        print(
            f"hash-tree renewal: {out.renewed} documents in {seconds:.1f} s = "
            f"{out.renewed / seconds:,.0f} records/s; {out.timestamps} TSA call(s), "
            f"{out.written} objects; peak RSS {peak_rss_mib():.0f} MiB"
        )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "rehash":
        rehash(int(sys.argv[2]) if len(sys.argv) > 2 else 2_000)
        return
    records = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    per_tree = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000
    with throwaway_stack(full=True) as base:
        evidence = base.evidence.model_copy(update={"renew_before_days": 3650})
        settings = base.model_copy(update={"evidence": evidence})
        start = time.perf_counter()
        trees = synthetic_trees(settings, records, per_tree)
        setup = time.perf_counter() - start
        store = S3ObjectStore.from_settings(settings)
        job = open_renewal(settings, store, open_keys(settings))
        now = datetime.now(UTC)
        start = time.perf_counter()
        plan = job.plan(now)
        planned = time.perf_counter() - start
        start = time.perf_counter()
        out = job.renew(now)
        renewed = time.perf_counter() - start
        rows = [
            ("step", "seconds", "what"),
            ("setup (not timed)", f"{setup:.1f}", f"{trees} trees of {per_tree}, one token each"),
            ("plan", f"{planned:.1f}", f"{plan.records} records, {len(plan.due)} due tokens"),
            (
                "renew (plan + write)",
                f"{renewed:.1f}",
                f"{out.timestamps} TSA call(s), {out.written} ATS objects, {out.records} records",
            ),
        ]
        print(table(rows))
        print(
            f"{out.records / renewed:,.0f} records/s renewed; peak RSS {peak_rss_mib():.0f} MiB "
            "(targets: <= 100 TSA calls, <= 600 s for 1,000,000 records)"
        )


if __name__ == "__main__":
    main()

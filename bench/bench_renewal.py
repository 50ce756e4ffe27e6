"""Timestamp renewal of the evidence of 1,000,000 records (issue #12: <= 100 TSA calls, <= 10 min).

Run by hand: ``python -m bench.bench_renewal [RECORDS] [PER_TREE]`` (default 1,000,000 records in
trees of 1,000, i.e. a thousand nightly runs). A throwaway embedded stack (SeaweedFS, the
development PKI and TSA, a keyring); the trees are synthetic (random document digests, each tree
with its own real token from the development TSA, saved as the nightly run saves its tree
index), the renewal is the real job (:func:`archive.pipeline.evidence_wiring.open_renewal`):
plan, one TSA call, one sealed locked ATS object per tree. The setup is not timed.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from archive.pipeline.evidence_state import TREES, Member, TreeIndex, longest
from archive.pipeline.evidence_wiring import open_renewal, tsa_timestamper
from archive.seal import open_keys
from archive.sign import RetryPolicy, SignerConfig, load_trust_roots
from archive.sign.tsa import tst_info
from archive.store import S3ObjectStore, SealedStore
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


def main() -> None:
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

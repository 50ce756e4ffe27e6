"""Catalog appends from several machines on the real SeaweedFS: each writer a process with its own
local directory, one bucket. Writers that claim the same manifest at once leave one unbroken chain
with every run exactly once; a writer killed (SIGKILL) before, during or after its claim loses and
duplicates nothing once it runs again, while another writer appended meanwhile."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from archive.catalog import Catalog
from infra.settings import AppSettings as Settings
from tests.support.catalog_writer import ROWS, append, row_base, sealed_store
from tests.support.evidence_crash import child_env


def _writer(settings: Settings, cache: Path, *args: str) -> subprocess.Popen[bytes]:
    env = child_env(settings) | {"EMR_ARCHIVE_CATALOG__CATALOG_DIR": str(cache)}
    argv = [sys.executable, "-m", "tests.support.catalog_writer", *args]
    return subprocess.Popen(
        argv, env=env, cwd=Path.cwd(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def _truth(settings: Settings, tmp_path: Path) -> Catalog:
    """The chain as the bucket holds it, verified end to end while it is rebuilt."""
    return Catalog.rebuild(tmp_path / "truth", sealed_store(settings))


def _every_row_once(catalog: Catalog, runs: list[tuple[str, int]]) -> None:
    """Exactly the rows of ``runs`` (writer, k): each run one manifest, each row once."""
    assert sorted(m.run_id for m in catalog.manifests) == sorted(f"{w}-{k}" for w, k in runs)
    ids = catalog.rows().column("encounter_id").to_pylist()
    expected = [f"enc-{row_base(w, k) + i:06d}" for w, k in runs for i in range(ROWS)]
    assert sorted(ids) == sorted(expected)


def test_writers_claiming_at_once_leave_one_chain_with_every_row_once(
    settings: Settings, tmp_path: Path
) -> None:
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    children = [
        _writer(settings, tmp_path / name, name, "1", "4", "--barrier", str(barrier))
        for name in ("a", "b")
    ]
    outputs = [child.communicate(timeout=120) for child in children]
    for child, (_, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err.decode()[-2000:]
    lost = sum(out.decode().count("lost ") for out, _ in outputs)
    assert lost >= 1  # they did race for the same manifest, and the loser rebased
    truth = _truth(settings, tmp_path)
    _every_row_once(truth, [(w, k) for w in "ab" for k in range(1, 5)])
    for name in ("a", "b"):  # each machine's cache holds the chain up to its own last append
        cache = Catalog.open(tmp_path / name)
        assert cache.manifests == truth.manifests[: len(cache.manifests)]


def test_writers_killed_at_their_claims_lose_and_duplicate_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    """Three writers (c, d, e) killed in their second append, at once (one bucket, so the
    SeaweedFS round trips overlap): before the claim, right after it, before HEAD."""
    killed = {"c": "claim", "d": "claimed", "e": "head"}
    children = [
        _writer(settings, tmp_path / name, name, "1", "2", "--die-at", die_at)
        for name, die_at in killed.items()
    ]
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == -9, err.decode()[-2000:]
    landed = {
        m.run_id for m in Catalog.rebuild(tmp_path / "after-kill", sealed_store(settings)).manifests
    }
    assert landed == {"c-1", "d-1", "d-2", "e-1", "e-2"}  # each died where it was meant to
    store = sealed_store(settings)
    other = Catalog.open(tmp_path / "b", create=True)  # another machine appends meanwhile
    append(other, store, "b", 1)
    for name in killed:  # each killed machine's cache, as the crash left it, reruns its runs
        cache = Catalog.open(tmp_path / name)
        for k in (1, 2):
            append(cache, store, name, k)
    truth = _truth(settings, tmp_path)
    _every_row_once(truth, [("b", 1), *((name, k) for name in killed for k in (1, 2))])
    for name in killed:
        assert Catalog.open(tmp_path / name).manifests == truth.manifests

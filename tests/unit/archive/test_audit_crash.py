"""A process killed at any step of a chain append leaves a chain the next append completes.

The child appends one segment to a log of three, hanging at the n-th ``os.replace`` (segment
or HEAD published) or right after the bucket copy is written, and is SIGKILLed there. Its bucket
is a :class:`MemoryStore` whose objects are pickled to a file after every upload, so the parent
sees exactly what reached the "bucket" before the kill.
"""

from __future__ import annotations

import itertools
import os
import pickle
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from archive.audit import SegmentChain
from tests.support.chains import CHAIN_KEY
from tests.support.memstore import MemoryStore
from tests.support.paths import REPO

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
PREFIX = "audit/segments/"

_CHILD = """
import itertools, os, pickle, sys, time
from datetime import UTC, datetime
from pathlib import Path
from archive.audit import SegmentChain
from tests.support.chains import CHAIN_KEY
from tests.support.memstore import MemoryStore

directory, bucket, stop = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
calls, real_replace = [], os.replace

def hang():
    print("hanging", flush=True)
    time.sleep(60)

def replace_then_hang(src, dst):
    calls.append(dst)
    if stop == f"replace{len(calls)}":
        hang()
    real_replace(src, dst)

class Persisted(MemoryStore):
    def put_locked(self, key, data, *, retain_until):
        put = super().put_locked(key, data, retain_until=retain_until)
        bucket.write_bytes(pickle.dumps(self._objects))
        if stop == "put":
            hang()
        return put

store = Persisted()
store._objects = pickle.loads(bucket.read_bytes())
store._ids = itertools.count(100)
os.replace = replace_then_hang
SegmentChain(directory, store, prefix="audit/segments/", key=CHAIN_KEY).append(
    [{"action": "grant.revoked", "n": 4}], now=datetime(2026, 11, 23, tzinfo=UTC)
)
"""


def _load(bucket: Path) -> MemoryStore:
    store = MemoryStore()
    store._objects = pickle.loads(bucket.read_bytes())  # noqa: S301 - written by this test
    store._ids = itertools.count(200)
    return store


def _kill_child_appending(directory: Path, bucket: Path, stop: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(directory), str(bucket), stop],
        cwd=REPO,
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"hanging\n"
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL


# replace1: before the intent HEAD; replace2: intent HEAD there, segment not published;
# replace3: segment there, HEAD not moved on; put: all written, killed before returning.
@pytest.mark.parametrize("stop", ["replace1", "replace2", "replace3", "put"])
def test_append_after_a_kill_at_any_step_of_an_append_succeeds(tmp_path: Path, stop: str) -> None:
    directory, bucket = tmp_path / "chain", tmp_path / "bucket.pickle"
    store = MemoryStore()
    for n in range(1, 4):
        SegmentChain(directory, store, prefix=PREFIX, key=CHAIN_KEY).append([{"n": n}], now=NOW)
    bucket.write_bytes(pickle.dumps(store._objects))
    _kill_child_appending(directory, bucket, stop)

    store = _load(bucket)
    chain = SegmentChain(directory, store, prefix=PREFIX, key=CHAIN_KEY)
    chain.append([{"n": 5}], now=NOW)
    report = chain.verify()
    assert report.passed, report.reason
    numbers = [r["n"] for r in chain.records()]
    assert numbers in ([1, 2, 3, 5], [1, 2, 3, 4, 5])  # the killed append is whole or absent
    assert [r["seq"] for r in chain.records()] == list(range(1, len(numbers) + 1))
    names = [v.key.removeprefix(PREFIX).split(".")[0] for v in store.list_versions(PREFIX)]
    assert names == [f"{i:010d}" for i in range(1, len(numbers) + 1)]
    assert SegmentChain(directory, store, prefix=PREFIX, key=CHAIN_KEY).verify().passed

"""A Dask cluster for the fan-out tests: a scheduler and two worker processes on loopback that
hold the store's secret key, and the test settings that send a run to it.

Each worker gets its S3 secret from its own environment (the flow ships settings without it),
and opens the keyring and the signing key itself from the settings' paths.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import SecretStr

from archive.store.s3_client import DevCredentials
from infra.dask_cluster import DaskCluster
from infra.settings import AppSettings as Settings


def store_secret(settings: Settings) -> str:
    return DevCredentials.load(settings.seaweedfs_dir).admin.secret_access_key


@contextmanager
def two_workers(directory: Path, secret: str) -> Iterator[DaskCluster]:
    """A scheduler and two worker processes that hold the store's secret key."""
    started = DaskCluster.start(directory)
    try:
        for _ in range(2):
            started.add_worker(env={"EMR_ARCHIVE_S3__SECRET_ACCESS_KEY": secret})
        yield started
    finally:
        started.stop()


@contextmanager
def lone_worker(
    scheduler: DaskCluster, *, env: dict[str, str] | None = None, hide: Path | None = None
) -> Iterator[int]:
    """One worker on ``scheduler`` (which has no other: every batch goes to it), stopped on the
    way out, and the scheduler left with no worker for the next test to find."""
    pid = scheduler.add_worker(env=env, hide=hide)
    try:
        yield pid
    finally:
        scheduler.stop_worker(pid)
        deadline = time.monotonic() + 30
        while scheduler.identities():  # the scheduler notices a stopped worker a moment later
            assert time.monotonic() < deadline, "the stopped worker stays on the scheduler"
            time.sleep(0.1)


def cluster_settings(settings: Settings, address: str, secret: str) -> Settings:
    """The test's settings with an explicit S3 identity (so workers need its secret) and the
    scheduler's address."""
    admin = DevCredentials.load(settings.seaweedfs_dir).admin
    s3 = settings.s3.model_copy(
        update={"access_key_id": admin.access_key_id, "secret_access_key": SecretStr(secret)}
    )
    cluster = settings.cluster.model_copy(update={"scheduler_address": address})
    return settings.model_copy(update={"s3": s3, "cluster": cluster})

"""One Dask cluster (a scheduler and two workers on loopback) for the session's fan-out tests:
the nightly run's (test_cluster.py) and verification's (test_verify_cluster.py); and a small
archived day, one for each module that asks for it (test_verify_cluster.py damages its own,
test_cluster_renewal_and_faults.py renews its own)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from archive.store import S3ObjectStore
from infra.dask_cluster import DaskCluster
from infra.settings import AppSettings as Settings
from tests.support.cluster import store_secret, two_workers
from tests.support.nightly import make_export, run_once
from tests.support.sites import own_bucket_settings


@pytest.fixture(scope="session")
def cluster_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dask")


@pytest.fixture(scope="session")
def secret(stack_settings: Settings) -> str:
    return store_secret(stack_settings)


@pytest.fixture(scope="session")
def cluster(cluster_dir: Path, secret: str) -> Iterator[DaskCluster]:
    """A scheduler and two worker processes that hold the store's secret key."""
    with two_workers(cluster_dir / "shared", secret) as started:
        yield started


@pytest.fixture(scope="session")
def lone_scheduler(cluster_dir: Path) -> Iterator[DaskCluster]:
    """A scheduler of its own, with no worker between tests: each test that needs one unfit
    worker adds it (tests.support.cluster.lone_worker). One for the session, because a fresh
    scheduler's first graph costs it the import of the flows' code (distributed unpickles the
    graph there: tens of seconds on a loaded machine, once per scheduler)."""
    started = DaskCluster.start(cluster_dir / "lone")
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def archived(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A small archived day (with its evidence) in a bucket and catalog of the module's own."""
    here = tmp_path_factory.mktemp("archived-day")
    bucket = f"ad-{secrets.token_hex(4)}"
    settings = own_bucket_settings(stack_settings, bucket=bucket, catalog_dir=here / "catalog")
    S3ObjectStore.from_settings(settings).create_locked_bucket()
    summary = run_once(settings, make_export(here / "export", encounters=12, seed=41))
    assert summary.archived >= 4
    assert summary.failed == {}
    return settings

"""One Dask cluster (a scheduler and two workers on loopback) for the session's fan-out tests:
the nightly run's (test_cluster.py) and verification's (test_verify_cluster.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.dask_cluster import DaskCluster
from infra.settings import AppSettings as Settings
from tests.support.cluster import store_secret, two_workers


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

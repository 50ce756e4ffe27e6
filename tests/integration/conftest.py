"""Integration fixtures: the real embedded stack, started once per session."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archive.store import S3ObjectStore
from infra.settings import AppSettings as Settings
from tests.support.openbao import BaoServer

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A `pytestmark` in a conftest marks nothing: mark every test under this directory here,
    # so `-m integration` / `-m "not integration"` select what they say.
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def store(stack_settings: Settings) -> S3ObjectStore:
    return S3ObjectStore.from_settings(stack_settings)


@pytest.fixture
def retain_until() -> datetime:
    # Short locks keep the test store's data small; COMPLIANCE rules apply the same way.
    return datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)


@pytest.fixture
def settings(stack_settings: Settings, tmp_path: Path) -> Settings:
    """The session stack with a bucket and a catalog of this test's own."""
    bucket = f"nightly-{secrets.token_hex(4)}"
    changed = stack_settings.model_copy(
        update={
            "s3": stack_settings.s3.model_copy(update={"bucket": bucket}),
            "catalog": stack_settings.catalog.model_copy(
                update={"catalog_dir": tmp_path / "catalog"}
            ),
            "archive": stack_settings.archive.model_copy(update={"workers": 1}),
        }
    )
    S3ObjectStore.from_settings(changed).create_locked_bucket()
    return changed


@pytest.fixture(scope="session")
def bao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaoServer]:
    """A real OpenBao (transit engine) on loopback, raft storage under a temporary data dir."""
    server = BaoServer.start(tmp_path_factory.mktemp("openbao"))
    try:
        yield server
    finally:
        server.stop()

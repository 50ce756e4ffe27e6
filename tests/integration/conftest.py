"""Integration fixtures: the real embedded stack, started once per session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from archive.s3 import S3ObjectStore
from archive.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def store(stack_settings: Settings) -> S3ObjectStore:
    return S3ObjectStore.from_settings(stack_settings)


@pytest.fixture
def retain_until() -> datetime:
    # Short locks keep the test store's data small; COMPLIANCE rules apply the same way.
    return datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)

"""Verification's settings reach what they configure (no network: clients are built, not used)."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from archive.core.settings import S3Settings, Settings
from archive.store import make_client
from verification.config import VerificationSettings, read_settings


def _settings(max_attempts: int) -> Settings:
    s3 = S3Settings(
        max_attempts=max_attempts, access_key_id="test", secret_access_key=SecretStr("test")
    )
    return Settings(s3=s3)


@pytest.mark.parametrize(
    ("s3_attempts", "read_attempts", "expected"), [(8, 3, 3), (8, 1, 1), (2, 3, 2)]
)
def test_record_reads_make_read_attempts_at_most_and_never_more_than_s3_allows(
    s3_attempts: int, read_attempts: int, expected: int
) -> None:
    settings = _settings(s3_attempts)
    chosen = read_settings(settings, VerificationSettings(read_attempts=read_attempts))
    assert chosen.s3.max_attempts == expected
    assert settings.s3.max_attempts == s3_attempts  # the caller's settings are left alone


def test_read_attempts_reach_the_s3_client_of_the_record_reads() -> None:
    chosen = read_settings(_settings(8), VerificationSettings(read_attempts=1))
    client = make_client(chosen, read_only=True)
    retries = client.meta.config.retries  # type: ignore[attr-defined]  # not in the stubs
    assert retries == {"mode": "standard", "total_max_attempts": 1}


@pytest.mark.parametrize("threads", [1, 16, 64])
def test_the_record_reads_client_has_a_connection_for_each_thread_sharing_it(threads: int) -> None:
    # A fixity process verifies `threads` records at once on one client: botocore's default pool
    # of 10 would make the rest wait for a connection (and log "Connection pool is full").
    chosen = read_settings(_settings(8), VerificationSettings(threads=threads))
    client = make_client(chosen, read_only=True)
    pool = client.meta.config.max_pool_connections  # type: ignore[attr-defined]  # not in stubs
    assert pool >= threads
    assert pool == max(threads, S3Settings().max_connections)  # never fewer than configured

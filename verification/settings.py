"""Verification's settings section (``[verification]``, ``EMR_ARCHIVE_VERIFICATION__*``), and the
settings of every process that verifies."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from archive.core.settings import Section, Settings
from archive.evidence import WeakAlgorithms

# When each hash stopped being relied on, as EU DSS's default validation policy dates them
# (its cryptographic constraints follow ETSI TS 119 312 and the SOG-IS agreed mechanisms): MD5
# from August 2005, SHA-1 from August 2009, SHA-224 from 2029. SHA-256/384/512 and SHA-3 are
# not dated by either: when a body dates them, the hash-tree renewal must have happened before,
# and that date goes here (a validation "as of" a later day then refuses what still relies on
# them). Our evidence records never use MD5/SHA-1; the TSAs' signatures might.
WEAK_ALGORITHMS_DEFAULT = ("md5:2005-08-01", "sha1:2009-08-01", "sha224:2029-01-01")


class VerificationSettings(Section):
    """Periodic verification (verification/, flows/verify.py)."""

    renewal_horizon_days: int = Field(
        default=730,
        ge=1,
        le=36500,
        description="list records whose newest timestamp's TSA certificate expires within this",
    )
    weak_hash_algorithms: tuple[str, ...] = Field(
        default=("sha1", "md5"), description="timestamp hash algorithms that need renewal"
    )
    weak_algorithms: tuple[str, ...] = Field(
        default=WEAK_ALGORITHMS_DEFAULT,
        description="algorithm:date from which a hash is weak (JSON list); evidence relying on "
        "it after that date fails evidence.weak_algorithm, now and in verify --at",
    )
    sample_share: float = Field(
        default=0.1, gt=0, le=1, description="share of each archive day the weekly sample checks"
    )
    batch_size: int = Field(default=200, ge=1, le=5000, description="records per Prefect task")
    workers: int = Field(default=0, ge=0, le=256, description="worker processes; 0 = all cores")
    threads: int = Field(
        default=4,
        ge=1,
        le=64,
        description="records in flight per worker, fixity runs only (overlaps store I/O)",
    )
    output_dir: Path | None = Field(
        default=None, description="unset = <data_dir>/verification (log, reports)"
    )
    evidence_grace_days: int = Field(
        default=7,
        ge=0,
        le=3650,
        description="a record may wait this long for its evidence record (TSA outage) before "
        "verification reports evidence.missing",
    )
    read_attempts: int = Field(
        default=3,
        ge=1,
        le=20,
        description="S3 attempts per read: a damaged object answers 500 on every try",
    )

    @field_validator("weak_algorithms")
    @classmethod
    def _dated(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        WeakAlgorithms.parse(value)  # refused at load, not at the first record judged
        return value

    def weak_table(self) -> WeakAlgorithms:
        return WeakAlgorithms.parse(self.weak_algorithms)


class VerifySettings(Settings):
    """The write path's settings plus verification's: what a verification run loads."""

    verification: VerificationSettings = VerificationSettings()

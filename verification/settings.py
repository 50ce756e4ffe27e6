"""Verification's settings section (``[verification]``, ``EMR_ARCHIVE_VERIFICATION__*``), and the
settings of every process that verifies."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from archive.core.settings import Section, Settings
from archive.evidence import WeakAlgorithms


class VerificationSettings(Section):
    """Periodic verification (verification/, flows/verify.py)."""

    renewal_horizon_days: int = Field(
        default=730,
        ge=1,
        le=36500,
        description="list records whose newest document timestamp's TSA certificate expires, "
        "or whose hash weakens by [evidence] weak_algorithms, within this",
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


class VerifySettings(Settings):
    """The write path's settings plus verification's: what a verification run loads."""

    verification: VerificationSettings = VerificationSettings()


def weak_table(settings: Settings) -> WeakAlgorithms:
    """The dated weak-algorithm table verification judges evidence by: ``[evidence]
    weak_algorithms``, the one the renewal job plans by, so a proof is renewed before the day
    verification would refuse it."""
    return WeakAlgorithms(settings.evidence.weak_since())

"""Verification settings and the inputs a run needs that the catalog does not hold (legal holds).

The settings section itself is :class:`verification.settings.VerificationSettings`; it is
re-exported here for the modules of this package.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from archive.core.settings import Settings
from verification.settings import VerificationSettings

__all__ = ["HoldSet", "HoldSource", "VerificationSettings", "output_directory", "read_settings"]


def output_directory(settings: Settings, vsettings: VerificationSettings) -> Path:
    """Where the log, reports and run summaries go."""
    return vsettings.output_dir or settings.data_dir / "verification"


def read_settings(settings: Settings, vsettings: VerificationSettings) -> Settings:
    """The settings verification reads records with: at most ``read_attempts`` S3 attempts per
    read, never more than the S3 section allows. A damaged object fails every retry (SeaweedFS
    takes seconds to refuse each read of a damaged needle), so a few attempts, not the write
    path's patience; a smaller ``s3.max_attempts`` is kept, not raised.

    A process's ``threads`` read records at once through one client: it keeps a connection for
    each (a larger ``s3.max_connections`` is kept)."""
    attempts = min(settings.s3.max_attempts, vsettings.read_attempts)
    connections = max(settings.s3.max_connections, vsettings.threads)
    update = {"max_attempts": attempts, "max_connections": connections}
    return settings.model_copy(update={"s3": settings.s3.model_copy(update=update)})


class HoldSource(Protocol):
    """Which records should be under legal hold; the catalog has no hold column (yet)."""

    def expected_hold(self, encounter_id: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class HoldSet:
    """Holds as a set of encounter ids (picklable, for worker processes). Empty: no record is
    expected to be held, so any hold found is reported until a holds register is wired in."""

    held: frozenset[str] = frozenset()

    @classmethod
    def of(cls, encounter_ids: Iterable[str]) -> HoldSet:
        return cls(frozenset(encounter_ids))

    def expected_hold(self, encounter_id: str) -> bool:
        return encounter_id in self.held

"""Errors of retention governance: an unusable policy, a refused hold, upgrade or disposition."""

from __future__ import annotations

from typing import ClassVar

from archive.core.errors import ArchiveError


class PolicyError(ArchiveError):
    """The retention policy cannot be used. ``line`` is the 1-based line of the problem in
    ``source`` when there is one; the message names both and says what to change."""

    def __init__(self, problem: str, *, source: str, line: int | None = None) -> None:
        self.problem, self.source, self.line = problem, source, line
        super().__init__(f"{source}, line {line}: {problem}" if line else f"{source}: {problem}")


class RetentionError(ArchiveError):
    """A hold, upgrade or disposition was refused; the message says why and what to do."""


class RunsInProgressError(RetentionError):
    """An archive run is writing the locks a governance command would change: refused so that
    the officer retries once the run has ended (EX_TEMPFAIL; :mod:`retention.exclusion`)."""

    exit_code: ClassVar[int] = 75
    http_status: ClassVar[int] = 409
    label: ClassVar[str] = "busy"

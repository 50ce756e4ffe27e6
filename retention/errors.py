"""Errors of retention governance: an unusable policy, a refused hold, upgrade or disposition."""

from __future__ import annotations

from archive.core.errors import ArchiveError


class PolicyError(ArchiveError):
    """The retention policy cannot be used. ``line`` is the 1-based line of the problem in
    ``source`` when there is one; the message names both and says what to change."""

    def __init__(self, problem: str, *, source: str, line: int | None = None) -> None:
        self.problem, self.source, self.line = problem, source, line
        super().__init__(f"{source}, line {line}: {problem}" if line else f"{source}: {problem}")


class RetentionError(ArchiveError):
    """A hold, upgrade or disposition was refused; the message says why and what to do."""

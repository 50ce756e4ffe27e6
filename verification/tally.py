"""What a run remembers of its records: counts, not the records.

A run over millions of records cannot hold every :class:`RecordResult` (each carries its checks'
messages). The log gets every row as it comes (:class:`verification.log.LogWriter`); the run keeps
this tally: counts by status and by reason, seconds by stage, and, for the report, the first
:data:`MAX_DETAIL` records that did not pass and renewals due (the log holds the rest). Its size
does not grow with the records verified.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from verification.results import RecordResult, Status

MAX_DETAIL = 2000  # records the report lists in full, each of failures and renewals


@dataclass(slots=True)
class Tally:
    verified: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)  # records not passed, by reason code
    stages: Counter[str] = field(default_factory=Counter)
    renewal_due: int = 0
    failed: list[RecordResult] = field(default_factory=list)  # the first MAX_DETAIL not passed
    renewals: list[RecordResult] = field(default_factory=list)  # the first MAX_DETAIL due

    @classmethod
    def of(cls, results: Iterable[RecordResult]) -> Tally:
        tally = cls()
        for r in results:
            tally.add(r)
        return tally

    def add(self, r: RecordResult) -> Status:
        status = r.status
        self.verified += 1
        self.statuses[status.value] += 1
        self.stages.update(dict(r.stage_seconds))
        if status is not Status.PASSED:
            self.reasons[r.reason.reason_code] += 1
            if len(self.failed) < MAX_DETAIL:
                self.failed.append(r)
        if r.renewal is not None:
            self.renewal_due += 1
            if len(self.renewals) < MAX_DETAIL:
                self.renewals.append(r)
        return status

    def bottom_lines(self) -> list[Status]:
        """One status per status seen among the records (what the run's verdict needs)."""
        return [Status(s) for s, n in self.statuses.items() if n]

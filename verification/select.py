"""Which catalogued records a run verifies: all, a stratified random sample, or those since a day.

The weekly sample draws the same share from every archive day (at least one record per day), so
an old day is checked as often as yesterday and a bad night cannot hide behind a good month. The
seed is recorded in the run summary: the sample can be drawn again to reproduce a finding.
"""

from __future__ import annotations

import math
import random
import secrets
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from archive.catalog import CatalogRow, table_to_rows
from verification.results import VerificationError
from verification.verifier import archive_day


class Mode(StrEnum):
    FULL = "full"
    SAMPLE = "sample"
    SINCE = "since"


@dataclass(frozen=True, slots=True, kw_only=True)
class Selection:
    mode: Mode
    share: float | None = None
    since: date | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.mode is Mode.SAMPLE and not (self.share and 0 < self.share <= 1):
            raise VerificationError("sample mode needs a share in (0, 1], e.g. --share 0.1")
        if self.mode is Mode.SAMPLE and self.seed is None:
            raise VerificationError("sample mode needs a seed (recorded to reproduce the sample)")
        if self.mode is Mode.SINCE and self.since is None:
            raise VerificationError("since mode needs a first day, e.g. --since 2026-11-01")

    @classmethod
    def create(
        cls,
        mode: str,
        *,
        default_share: float,
        share: float | None = None,
        since: date | None = None,
        seed: int | None = None,
    ) -> Selection:
        """The selection a caller asked for by name; a sample gets the configured share unless
        one is given, and a fresh random seed (recorded in the report) unless one is given."""
        chosen = Mode(mode)
        if chosen is not Mode.SAMPLE:
            return cls(mode=chosen, since=since)
        return cls(
            mode=chosen,
            share=share or default_share,
            since=since,
            seed=seed if seed is not None else secrets.randbits(32),
        )

    def describe(self) -> str:
        if self.mode is Mode.SAMPLE:
            return f"sample of {self.share:.0%} per archive day (seed {self.seed})"
        if self.mode is Mode.SINCE:
            return f"records archived since {self.since}"
        return "every catalogued record"


def catalog_rows(table: Any) -> list[CatalogRow]:
    """Catalog rows, oldest first. Every row names an object version that must hold, so a
    renewed record's older versions are verified too."""
    return table_to_rows(table)


def select(rows: Sequence[CatalogRow], selection: Selection, *, tz: str) -> list[CatalogRow]:
    if selection.mode is Mode.FULL:
        return list(rows)
    if selection.mode is Mode.SINCE:
        assert selection.since is not None  # checked in Selection
        start = datetime.combine(selection.since, datetime.min.time(), tzinfo=ZoneInfo(tz))
        return [r for r in rows if r.signed_at >= start]
    return _stratified(rows, share=selection.share or 0.0, seed=selection.seed or 0)


def _stratified(rows: Sequence[CatalogRow], *, share: float, seed: int) -> list[CatalogRow]:
    by_day: dict[str, list[CatalogRow]] = defaultdict(list)
    for row in rows:
        by_day[archive_day(row)].append(row)
    rng = random.Random(seed)  # noqa: S311 - a sample, not a secret
    chosen: list[CatalogRow] = []
    for day in sorted(by_day):
        members = by_day[day]
        chosen += rng.sample(members, max(1, math.ceil(share * len(members))))
    return chosen

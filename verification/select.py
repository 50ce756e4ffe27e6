"""Which catalogued records a run verifies: all, a stratified random sample, or those since a day.

The weekly sample draws the same share from every archive day (at least one record per day), so
an old day is checked as often as yesterday and a bad night cannot hide behind a good month. The
seed is recorded in the run summary: the sample can be drawn again to reproduce a finding.

:func:`select` works on rows in memory; :func:`selected` makes the same choice, in the same order,
straight from a catalog of any size: "since" is a predicate pushed down to the manifests' row
groups, a sample first reads two narrow columns (the archive day of each row, kept as one 8-byte
position per row), draws, then reads only the chosen rows; "full" streams every row in batches.
"""

from __future__ import annotations

import math
import random
import secrets
from array import array
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Final
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc

from archive.catalog import Catalog, CatalogRow, reader, table_to_rows
from verification.results import VerificationError
from verification.verifier import archive_day

# What the archive-wide checks compare of every catalogued row (:func:`marked`).
MARK_COLUMNS: Final = ("object_key", "version_id", "sealed_sha256", "retain_until", "encounter_id")


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


def selected(
    catalog: Catalog,
    selection: Selection,
    *,
    tz: str,
    disposed: Collection[tuple[str, str]] = frozenset(),
    batch_rows: int = reader.BATCH_ROWS,
) -> Iterator[list[CatalogRow]]:
    """What :func:`select` picks from the catalog's rows less ``disposed`` (key, version) pairs,
    in the same order, as batches of at most ``batch_rows``: memory is bounded by a batch (and
    8 bytes per row for a sample), never by the catalog."""
    if selection.mode is Mode.SAMPLE:
        yield from _sampled(catalog, selection, disposed=disposed, batch_rows=batch_rows)
        return
    where = None
    if selection.mode is Mode.SINCE:
        assert selection.since is not None  # checked in Selection
        start = datetime.combine(selection.since, datetime.min.time(), tzinfo=ZoneInfo(tz))
        where = pc.field("signed_at") >= pa.scalar(start, pa.timestamp("us", tz="UTC"))
    for table in reader.batches(catalog, where=where, batch_rows=batch_rows):
        rows = [r for r in table_to_rows(table) if (r.object_key, r.version_id) not in disposed]
        if rows:
            yield rows


def _sampled(
    catalog: Catalog,
    selection: Selection,
    *,
    disposed: Collection[tuple[str, str]],
    batch_rows: int,
) -> Iterator[list[CatalogRow]]:
    chosen = _draw(catalog, selection, disposed=disposed, batch_rows=batch_rows)
    # Pass 2: read the chosen rows (positions in catalog order), hand them out in draw order.
    wanted = sorted(chosen)
    rows: dict[int, CatalogRow] = {}
    position, i = 0, 0
    for table in reader.batches(catalog, batch_rows=batch_rows):
        end, local = position + table.num_rows, []
        while i < len(wanted) and wanted[i] < end:
            local.append(wanted[i] - position)
            i += 1
        if local:
            picked = table_to_rows(table.take(pa.array(local, pa.int64())))
            rows.update(zip((position + j for j in local), picked, strict=True))
        position = end
    for start in range(0, len(chosen), batch_rows):
        yield [rows[p] for p in chosen[start : start + batch_rows]]


def marked(
    catalog: Catalog,
    selection: Selection,
    *,
    tz: str,
    disposed: Collection[tuple[str, str]] = frozenset(),
    batch_rows: int = reader.BATCH_ROWS,
) -> Iterator[tuple[Any, Any]]:
    """Every catalogued row less ``disposed``, oldest first, as ``MARK_COLUMNS`` batches, each
    with a boolean array: does :func:`selected` pick the row. What the archive-wide checks
    compare (:mod:`verification.catalog_index`); memory is one batch, and for a sample the chosen
    rows' positions (8 bytes each)."""
    chosen = array("q")
    if selection.mode is Mode.SAMPLE:
        chosen = array(
            "q", sorted(_draw(catalog, selection, disposed=disposed, batch_rows=batch_rows))
        )
    start = None
    if selection.mode is Mode.SINCE:
        assert selection.since is not None  # checked in Selection
        since = datetime.combine(selection.since, datetime.min.time(), tzinfo=ZoneInfo(tz))
        start = pa.scalar(since, pa.timestamp("us", tz="UTC"))
    gone = pa.array([f"{key}\x00{version}" for key, version in disposed], pa.string())
    position = 0
    for table in reader.batches(
        catalog, columns=[*MARK_COLUMNS, "signed_at"], batch_rows=batch_rows
    ):
        n = table.num_rows
        if selection.mode is Mode.SAMPLE:
            mask = [False] * n
            for p in chosen[bisect_left(chosen, position) : bisect_left(chosen, position + n)]:
                mask[p - position] = True
            picked = pa.array(mask, pa.bool_())
        elif start is not None:
            picked = pc.greater_equal(table.column("signed_at"), start).combine_chunks()
        else:
            picked = pa.array([True] * n, pa.bool_())
        kept = _not_disposed(table, gone)
        if kept is not None:
            table, picked = table.filter(kept), picked.filter(kept)
        position += n
        yield table.select(list(MARK_COLUMNS)), picked


def _draw(
    catalog: Catalog,
    selection: Selection,
    *,
    disposed: Collection[tuple[str, str]],
    batch_rows: int,
) -> array[int]:
    """The sample's rows, as positions in catalog order (disposed rows counted, never drawn), in
    the order :func:`_stratified` draws them."""
    # Pass 1: each kept row's position (in catalog order) under its archive day.
    by_day: dict[str, array[int]] = defaultdict(lambda: array("q"))
    position = 0
    columns = ["run_id", "signed_at", "object_key", "version_id"]
    gone = pa.array([f"{key}\x00{version}" for key, version in disposed], pa.string())
    for table in reader.batches(catalog, columns=columns, batch_rows=batch_rows):
        days = _archive_days(table).combine_chunks().dictionary_encode()
        kept = _not_disposed(table, gone)
        for k, day in enumerate(days.dictionary.to_pylist()):  # a day or two per batch
            members = pc.equal(days.indices, k)
            if kept is not None:
                members = pc.and_(members, kept)
            at = pc.add(pc.indices_nonzero(members), position).cast(pa.int64())
            # 8-byte positions, no object per row (the buffer may be padded: cut to length).
            by_day[day].frombytes(memoryview(at.buffers()[1])[: 8 * len(at)])
        position += table.num_rows
    # The draw of _stratified: random.sample's choice depends only on the population's size,
    # so drawing from the positions picks the rows it would pick from the rows themselves.
    rng = random.Random(selection.seed or 0)  # noqa: S311 - a sample, not a secret
    share = selection.share or 0.0
    chosen = array("q")
    for day in sorted(by_day):
        members = by_day[day]
        chosen.extend(rng.sample(members, max(1, math.ceil(share * len(members)))))
    return chosen


def _archive_days(table: Any) -> Any:
    """:func:`verification.verifier.archive_day` of every row, computed on the columns."""
    run_id = table.column("run_id")
    head = pc.utf8_slice_codeunits(run_id, 0, 8)
    dated = pc.and_(pc.greater_equal(pc.utf8_length(run_id), 8), pc.utf8_is_digit(head))
    from_run = pc.binary_join_element_wise(
        pc.utf8_slice_codeunits(run_id, 0, 4),
        pc.utf8_slice_codeunits(run_id, 4, 6),
        pc.utf8_slice_codeunits(run_id, 6, 8),
        "-",
    )
    signed = pc.strftime(table.column("signed_at"), format="%Y-%m-%d")
    return pc.if_else(dated, from_run, signed)


def _not_disposed(table: Any, gone: Any) -> Any:
    """Which rows are not among the disposed (key NUL version) pairs ``gone``; None: all."""
    if not len(gone):
        return None
    pairs = pc.binary_join_element_wise(
        table.column("object_key"), table.column("version_id"), "\x00"
    )
    return pc.invert(pc.is_in(pairs.combine_chunks(), value_set=gone))

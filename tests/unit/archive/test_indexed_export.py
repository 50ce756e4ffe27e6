"""A FHIR export indexed once by a cluster worker, then read back batch by batch: the same items
as the collector gives for each batch's slice, with one scan of the export for all the batches
(before, every batch scanned the whole export again)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from archive.sources import EncounterBundle, IndexedExport, QuarantineEntry, Window, collect
from archive.sources.bulk import index as bulk_index
from archive.sources.bulk.manifest import ExportFile
from infra.sample import write_sample_export
from tests.support.nightly import DAY


def test_batches_read_from_one_index_are_the_collector_s_items(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_sample_export(tmp_path, encounters=40, seed=7, day=DAY, bad_share=0.2)
    window = Window.for_day(DAY)
    collected = [i for i in collect(tmp_path, window=window) if isinstance(i, EncounterBundle)]
    assert len(collected) >= 6
    scans = 0
    read = bulk_index.Indexer.read

    def counted(self: bulk_index.Indexer, files: list[ExportFile]) -> Iterator[QuarantineEntry]:
        nonlocal scans
        scans += 1
        return read(self, files)

    monkeypatch.setattr(bulk_index.Indexer, "read", counted)
    export = IndexedExport(tmp_path, window)
    batches = [collected[i : i + 3] for i in range(0, len(collected), 3)]
    for batch in batches:
        items = list(export.items(b.encounter_id for b in reversed(batch)))
        assert items == batch  # same bundles, same data hashes, in encounter id order
    assert scans == 1  # one pass over the export for every batch
    # An id the index did not select (another day, quarantined, unknown) yields nothing.
    assert list(export.items(["no-such-encounter"])) == []

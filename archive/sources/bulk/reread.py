"""An export indexed once, then read back encounter by encounter: what a cluster worker does with
the batches of one run.

A worker receives batches as references (encounter ids and data hashes), never resources. Reading
its batch with :func:`~archive.sources.bulk.collect` would run passes 1 and 2 over the whole
export for every batch: B batches, B scans of the export across the cluster. Instead each worker
indexes the run's window once (:class:`IndexedExport`: positions only, as the collector keeps) and
builds each batch's encounters by position with pass 3 (:mod:`~archive.sources.bulk.build`), the
same code and checks as the collector: one scan per worker and run.

The bundles are the collector's (pass 3 is the same; the window only gives the time zone), and the
caller still compares each one's data hash with what the flow planned: a file changed since is
found there, not trusted.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path

from archive.sources.bulk.build import Builder
from archive.sources.bulk.collect import DEFAULT_MAX_LINE_BYTES
from archive.sources.bulk.index import Indexer, Selected
from archive.sources.bulk.manifest import discover
from archive.sources.bulk.ndjson import open_file
from archive.sources.model import CollectedItem, Window


class IndexedExport:
    """Passes 1 and 2 over ``export_dir`` for ``window``, done at construction (raising
    :class:`SourceError` when the export is unusable)."""

    def __init__(
        self, export_dir: Path, window: Window, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    ) -> None:
        self.window = window
        self.files = discover(Path(export_dir), window)
        self.index = Indexer(window=window, limit=max_line_bytes)
        for _line in self.index.read(self.files):
            pass  # bad lines: the flow's own collection quarantined them
        self._selected: dict[str, Selected] = {s.id: s for s in self.index.encounters}

    def __len__(self) -> int:
        return len(self._selected)

    def items(self, encounter_ids: Iterable[str]) -> Iterator[CollectedItem]:
        """The bundle (or quarantine entries) of each of ``encounter_ids`` the index selected,
        in encounter id order, as :func:`~archive.sources.bulk.collect` yields them."""
        wanted = sorted({i for i in encounter_ids if i in self._selected})
        with ExitStack() as stack:
            handles = {f.index: stack.enter_context(open_file(f, random=True)) for f in self.files}
            builder = Builder(
                files=self.files, handles=handles, index=self.index, window=self.window
            )
            for encounter_id in wanted:
                yield from builder.finish(self._selected[encounter_id])

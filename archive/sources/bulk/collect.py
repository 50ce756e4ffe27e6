"""The collector's entry point: check the export now, then run the three passes lazily.

Takes an export directory and a window; returns an iterator of :data:`CollectedItem`. Discovery
runs at the call, so an unusable export fails before anything is consumed. Output order: line
entries in file order as they are met in passes 1-2, then the encounters (bundles and encounter
entries, each followed by its line entries) sorted by encounter id, so that the same export
always gives the same sequence whatever order the server wrote its files in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Final

from archive.sources.bulk.build import Builder
from archive.sources.bulk.index import Indexer
from archive.sources.bulk.manifest import ExportFile, discover
from archive.sources.bulk.ndjson import open_file
from archive.sources.model import CollectedItem, Window

DEFAULT_MAX_LINE_BYTES: Final = 16 * 1024 * 1024


def collect(
    export_dir: Path,
    *,
    window: Window,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    on_selected: Callable[[int], None] | None = None,
) -> Iterator[CollectedItem]:
    """Stream the encounters of ``export_dir`` whose ``period.end`` falls in ``window``.

    The export is checked now (raising :class:`SourceError` when it is unusable); records are
    read lazily as the iterator is consumed. ``on_selected`` learns how many encounters were
    selected once the export has been indexed, before the first bundle (for progress bars).
    """
    if not 0 < max_line_bytes < 1 << 32:
        raise ValueError("max_line_bytes must be between 1 and 4 GiB")
    files = discover(Path(export_dir), window)
    return _run(files, window=window, limit=max_line_bytes, on_selected=on_selected)


def _run(
    files: list[ExportFile],
    *,
    window: Window,
    limit: int,
    on_selected: Callable[[int], None] | None,
) -> Iterator[CollectedItem]:
    index = Indexer(window=window, limit=limit)
    yield from index.read(files)
    if on_selected is not None:
        on_selected(len(index.encounters))
    with ExitStack() as stack:
        handles = {f.index: stack.enter_context(open_file(f, random=True)) for f in files}
        builder = Builder(files=files, handles=handles, index=index, window=window)
        for selected in sorted(index.encounters, key=lambda enc: enc.id):
            yield from builder.finish(selected)

"""The QĐ 130 collector: finished encounters from a directory of ``GIAMDINHHS`` / HOSO files.

Two streaming passes keep memory at one file chunk per process plus the index of the window's
encounters:

1. every ``*.xml`` file is streamed (:mod:`~archive.sources.qd130.index`); of each HOSO only its
   XML1 is decoded, for ``MA_LK`` and ``NGAY_RA``; a HOSO discharged in the window is indexed by
   ``MA_LK`` with its byte range, and the file's facility signature (``CHUKYDONVI``) is checked
   when the file holds such a HOSO: the result travels with each of its bundles, and an invalid
   signature holds the whole file back; the window's HOSO are kept as compact rows
   (:mod:`~archive.sources.qd130.places`);
2. in ``MA_LK`` order each indexed HOSO is read back by range and checked table by table
   (:mod:`~archive.sources.qd130.build`); its FHIR mapping for the page waits for the render
   worker (:mod:`~archive.sources.qd130.page`).

With ``workers`` > 1 (and enough bytes to repay starting processes) both passes run on the
archive's process pool (:func:`archive.core.pool.worker_pool`): pass 1 a few files per task and
a large envelope in byte ranges on every worker (:mod:`~archive.sources.qd130.pieces`), pass 2 a
few episodes per task, with a bounded number of tasks in flight so memory stays bounded
however slowly the caller consumes. Results are taken in submission order, so the items and
their order are the same whatever the number of workers.

Nothing bad raises: a broken or hostile file is one ``FILE`` entry (its HOSO are held back with
it), a bad HOSO an ``ENCOUNTER`` entry, two different HOSO with one ``MA_LK`` in the window are
both held back (``duplicate-id``; identical copies are archived once). Only a directory without
any XML file raises :class:`SourceError`. What is embedded is the HOSO's bytes as the file holds
them; a file holding a single HOSO is embedded whole, so its facility signature stays checkable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor
from itertools import repeat
from pathlib import Path
from typing import IO, Final, TypeVar

from cryptography.hazmat.primitives.serialization import Encoding

from archive.core.errors import SourceError
from archive.core.pool import worker_pool
from archive.sources.model import CollectedItem, Window
from archive.sources.qd130.build import (
    Episode,
    OpenFiles,
    build,
    build_chunk,
    entry,
    read_range,
)
from archive.sources.qd130.hoso import Limits
from archive.sources.qd130.index import FileIndex, Refusal, index_file, index_files
from archive.sources.qd130.pieces import Piece, index_piece, merge, plan
from archive.sources.qd130.places import Places, Rows
from archive.sources.qd130.signature import FacilityTrust
from archive.sources.quarantine import QuarantineEntry, QuarantineReason, QuarantineScope

DEFAULT_LIMITS: Final = Limits(
    max_hoso_bytes=64 << 20, max_table_bytes=32 << 20, max_text_chars=1 << 20
)
FILE_SAMPLE: Final = 64 << 10  # what a FILE entry keeps of a refused file
# Below this many bytes in all, starting worker processes (about a second each) costs more
# than it saves.
POOL_MIN_BYTES: Final = 16 << 20
FILES_PER_TASK: Final = 64  # pass 1: small files per task (a large file is a task alone)
TASK_BYTES: Final = 1 << 20  # pass 1: a task's bytes; pass 2: its HOSO bytes (memory bound)
EPISODES_PER_TASK: Final = 32  # pass 2
TASKS_IN_FLIGHT: Final = 4  # pass 2, per worker, twice over (the next group is prepared)
T = TypeVar("T")


def discover(source_dir: Path) -> list[Path]:
    """The ``*.xml`` files of ``source_dir``, by name."""
    if not source_dir.is_dir():
        raise SourceError(f"source directory {source_dir} does not exist or is not a directory")
    found = sorted(p for p in source_dir.iterdir() if p.suffix.lower() == ".xml" and p.is_file())
    if not found:
        raise SourceError(
            f"no QĐ 130 XML files in {source_dir}: copy the HIS's GIAMDINHHS export there"
        )
    return found


def collect(
    source_dir: Path,
    *,
    window: Window,
    limits: Limits = DEFAULT_LIMITS,
    trust: FacilityTrust | None = None,
    on_selected: Callable[[int], None] | None = None,
    workers: int = 1,
    pool_min_bytes: int = POOL_MIN_BYTES,
) -> Iterator[CollectedItem]:
    files = discover(Path(source_dir))
    if workers > 1 and sum(p.stat().st_size for p in files) < pool_min_bytes:
        workers = 1
    return _run(files, window, limits, trust or FacilityTrust(), on_selected, workers)


def _run(
    files: list[Path],
    window: Window,
    limits: Limits,
    trust: FacilityTrust,
    on_selected: Callable[[int], None] | None,
    workers: int,
) -> Iterator[CollectedItem]:
    pool = worker_pool(workers, initializer=_ready, initargs=()) if workers > 1 else None
    try:
        index = Places()
        for found, rows in _indexes(pool, files, window, limits, trust):
            yield from _refused(found, limits)
            index.add(found, rows)
        if on_selected is not None:
            on_selected(len(index))
        if pool is None:
            with OpenFiles() as handles:
                for key in index.in_order():
                    yield from build(key, index.places(key), window, limits, handles)
        else:
            yield from _built(pool, workers, _episodes(index), window, limits)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _ready() -> None:
    """Nothing to load per worker: each task carries what it needs."""


def _indexes(
    pool: Executor | None, files: list[Path], window: Window, limits: Limits, trust: FacilityTrust
) -> Iterator[tuple[FileIndex, Rows | None]]:
    """Pass 1, file by file in name order. On the pool, a large envelope is read as byte ranges
    on every worker (:mod:`~archive.sources.qd130.pieces`), the other files a few per task."""
    if pool is None:
        for path in files:
            yield index_file(path, window, limits, trust), None
        return
    trusted = tuple(sorted(c.public_bytes(Encoding.DER) for c in trust.certs.values()))
    steps: list[tuple[Path, int] | list[Path]] = []  # a file in n ranges, or a run of files
    pieces: list[Piece] = []
    run: list[Path] = []
    for path in files:
        size = path.stat().st_size
        ranges = plan(path, size) if size > limits.max_signed_file_bytes else []
        if not ranges:
            run.append(path)
            continue
        steps += list(_batches(run, lambda p: p.stat().st_size, FILES_PER_TASK))
        steps.append((path, len(ranges)))
        pieces += ranges
        run = []
    steps += list(_batches(run, lambda p: p.stat().st_size, FILES_PER_TASK))
    tasks = [step for step in steps if isinstance(step, list)]
    # Every task is submitted at once, the ranges first (the longest work): what comes back is
    # byte ranges, no file content.
    n, m = len(pieces), len(tasks)
    ranged = pool.map(index_piece, pieces, repeat(window, n), repeat(limits, n))
    batched = pool.map(index_files, tasks, repeat(window, m), repeat(limits, m), repeat(trusted, m))
    for step in steps:
        if isinstance(step, list):
            yield from ((found, None) for found in next(batched))
            continue
        path, count = step
        merged = merge(path, (next(ranged) for _ in range(count)), limits, trust)
        if merged is not None:
            yield merged
        else:  # broken somewhere: the whole reading says where and why
            whole = pool.map(index_files, [[path]], [window], [limits], [trusted])
            yield next(whole)[0], None


def _episodes(index: Places) -> Iterator[list[Episode]]:
    def size(episode: Episode) -> int:
        return sum(p.end_tag - p.start for p in episode[1])

    yield from _batches(((k, index.places(k)) for k in index.in_order()), size, EPISODES_PER_TASK)


def _built(
    pool: Executor,
    workers: int,
    tasks: Iterator[list[Episode]],
    window: Window,
    limits: Limits,
) -> Iterator[CollectedItem]:
    """Pass 2 on the pool: a group of tasks computes while the previous one is handed out."""
    group = workers * TASKS_IN_FLIGHT
    pending: Iterable[list[CollectedItem]] = ()
    while part := [t for _, t in zip(range(group), tasks, strict=False)]:
        n = len(part)
        results = pool.map(build_chunk, part, repeat(window, n), repeat(limits, n))
        for items in pending:
            yield from items
        pending = results
    for items in pending:
        yield from items


def _batches(items: Iterable[T], size: Callable[[T], int], most: int) -> Iterator[list[T]]:
    """Consecutive runs of at most ``most`` items and about :data:`TASK_BYTES` (an item larger
    than that is a run of its own)."""
    run: list[T] = []
    held = 0
    for item in items:
        weight = size(item)
        if run and (len(run) == most or held + weight > TASK_BYTES):
            yield run
            run, held = [], 0
        run.append(item)
        held += weight
    if run:
        yield run


def _refused(found: FileIndex, limits: Limits) -> Iterator[QuarantineEntry]:
    path = found.path
    if found.refused is not None:
        yield _file_entry(path, *found.refused)
        return
    if not found.refusals:
        return
    with path.open("rb", buffering=0) as handle:
        for r in found.refusals:
            yield entry(path, r.ordinal, r.reason, r.detail, _slice(handle, r, limits), None)


def _slice(handle: IO[bytes], r: Refusal, limits: Limits) -> bytes:
    """The HOSO's bytes for its quarantine entry; of one too large, only its beginning."""
    if r.end_tag - r.start <= limits.max_hoso_bytes:
        return read_range(handle, r.start, r.end_tag, limits)
    handle.seek(r.start)
    return handle.read(FILE_SAMPLE)


def _file_entry(path: Path, reason: QuarantineReason, detail: str) -> QuarantineEntry:
    with path.open("rb") as handle:
        sample = handle.read(FILE_SAMPLE)
    return QuarantineEntry(
        reason=reason,
        scope=QuarantineScope.FILE,
        source_file=path.name,
        line_number=0,
        resource_type=None,
        resource_id=None,
        encounter_id=None,
        detail=f"{detail}; every HOSO of the file is held back (first "
        f"{FILE_SAMPLE // 1024} KiB kept)",
        raw_line=sample,
    )

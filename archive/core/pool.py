"""The process pool both batch runs use (archive and verification).

CPU-bound work (rendering, signing, validation) needs real processes; each worker loads its
expensive state once through ``initializer``. ``spawn``, not fork: the parent already runs
threads (boto3, Prefect) and a forked copy of them can deadlock. ``workers == 1`` runs the same
code in-process, for tests and debugging.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def worker_pool(
    workers: int, *, initializer: Callable[..., None], initargs: tuple[Any, ...]
) -> Executor:
    if workers == 1:
        return InProcess(initializer, initargs)
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=initializer,
        initargs=initargs,
    )


class InProcess(Executor):
    """An executor that runs ``map`` in the calling process after the same initializer."""

    def __init__(self, initializer: Callable[..., None], initargs: tuple[Any, ...]) -> None:
        initializer(*initargs)

    def map(self, fn: Callable[..., Any], *iterables: Any, **_: Any) -> Iterator[Any]:
        return iter([fn(*args) for args in zip(*iterables, strict=True)])


def split(items: Sequence[T], parts: int) -> list[list[T]]:
    """At most ``parts`` chunks of nearly equal size, in order (for load balance)."""
    parts = max(1, min(parts, len(items)))
    size = -(-len(items) // parts)
    return [list(items[i : i + size]) for i in range(0, len(items), size)]

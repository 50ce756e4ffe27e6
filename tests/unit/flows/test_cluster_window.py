"""Verification on the cluster reads and submits batches a window ahead of the results it
records, never the whole selection at once (flows.cluster.ahead)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from flows.cluster import MIN_IN_FLIGHT, ahead, in_flight


def test_batches_are_read_and_submitted_at_most_a_window_ahead_in_order() -> None:
    read: list[int] = []

    def batches() -> Iterator[int]:
        for i in range(100):
            read.append(i)
            yield i

    submitted: list[int] = []
    taken: list[int] = []
    with ThreadPoolExecutor(2) as pool:

        def submit(i: int) -> Future[int]:
            submitted.append(i)
            return pool.submit(lambda: i * i)

        for i, future in ahead(batches(), submit, window=5):
            assert len(read) - len(taken) <= 5  # held: the window, not the selection
            assert len(submitted) - len(taken) <= 5
            assert future.result() == i * i
            taken.append(i)
    assert taken == submitted == list(range(100))  # every batch, once, in order


def test_the_window_keeps_every_worker_thread_busy_twice_over() -> None:
    assert in_flight(0) == in_flight(1) == MIN_IN_FLIGHT
    assert in_flight(32) == 64
    with pytest.raises(ValueError, match="at least 1"):
        list(ahead([1], lambda i: i, window=0))

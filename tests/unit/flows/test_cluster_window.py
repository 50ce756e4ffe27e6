"""Verification on the cluster reads and submits batches a window ahead of the results it
records, never the whole selection at once, and records them as they finish
(flows.cluster.ahead)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future

import pytest

from flows.cluster import MIN_IN_FLIGHT, ahead, in_flight


def test_batches_are_read_and_submitted_at_most_a_window_ahead() -> None:
    read: list[int] = []

    def batches() -> Iterator[int]:
        for i in range(100):
            read.append(i)
            yield i

    slow: Future[int] = Future()  # the first batch: a damaged object, seconds to refuse

    def submit(i: int) -> Future[int]:
        if i == 0:
            return slow
        done: Future[int] = Future()
        done.set_result(i * i)
        return done

    taken: list[int] = []
    for i, future in ahead(batches(), submit, window=5):
        assert len(read) - len(taken) <= 5  # held: the window, not the selection
        assert future.result(timeout=5) == i * i  # handed back finished
        taken.append(i)
        if len(taken) == 50:  # the others went on past the slow one
            slow.set_result(0)
    assert sorted(taken) == list(range(100))  # every batch, once
    assert taken.index(0) >= 50


def test_the_window_keeps_every_worker_thread_busy_twice_over() -> None:
    assert in_flight(0) == in_flight(1) == MIN_IN_FLIGHT
    assert in_flight(32) == 64
    with pytest.raises(ValueError, match="at least 1"):
        list(ahead([Future()], lambda f: f, window=0))

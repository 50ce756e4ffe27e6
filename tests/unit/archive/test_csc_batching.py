"""CSC batching races, made to happen in a chosen order against an in-memory service transport.

The commit timer, documents arriving while a commit is in flight, a document cancelled while its
own task commits the batch, a service that never answers, and a batch left behind by an earlier
event loop: each of these once left (or could leave) a document waiting for a signature forever,
which hangs the whole nightly run. Every wait must end, with a signature or a retryable error.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from archive.core.errors import RemoteSignerUnavailableError
from archive.sign.csc_batch import BatchAuthorisation, BatchingCscSigner
from tests.support.csc_twin import CscTwin

GUARD_S = 5.0  # a test that waits longer than this has found a hang


def _signer(twin: CscTwin, batch_size: int, **bounds: float) -> BatchingCscSigner:
    authorisation = BatchAuthorisation(twin.session, twin.credential, twin)
    return BatchingCscSigner(authorisation, twin, batch_size=batch_size, **bounds)


async def _settle() -> None:
    for _ in range(5):  # let the tasks just created run up to their first real wait
        await asyncio.sleep(0)


def test_a_document_arriving_while_the_timer_commits_is_signed_in_the_next_batch() -> None:
    # The hang seen once in CI: the timer committed a partial batch; the last document arrived
    # during that commit (so no new timer was started: the old one was alive), waited for it, then
    # opened a new batch after the timer had ended: nobody ever committed it.
    hold, arrived = asyncio.Event(), asyncio.Event()
    twin = CscTwin(hold=hold, arrived=arrived)
    signer = _signer(twin, batch_size=10)

    async def scenario() -> list[bytes]:
        first = asyncio.create_task(signer.async_sign_raw(b"first", "sha256"))
        await arrived.wait()  # the timer's commit of [first] is in flight
        second = asyncio.create_task(signer.async_sign_raw(b"second", "sha256"))
        await _settle()
        hold.set()
        async with asyncio.timeout(GUARD_S):
            return list(await asyncio.gather(first, second))

    signatures = asyncio.run(scenario())
    assert len(signatures) == 2
    assert twin.requests == ["credentials/authorize", "signatures/signHash"] * 2
    assert twin.hashes_signed == 2


def test_a_document_cancelled_while_its_task_commits_does_not_fail_the_batch() -> None:
    # The document that fills the batch commits it in its own task (pyHanko's autocommit); if
    # that document is cancelled (its deadline, a stopping run), the others still get signed.
    hold, arrived = asyncio.Event(), asyncio.Event()
    twin = CscTwin(hold=hold, arrived=arrived)
    signer = _signer(twin, batch_size=2)

    async def scenario() -> bytes:
        waiting = asyncio.create_task(signer.async_sign_raw(b"waiting", "sha256"))
        await _settle()
        filling = asyncio.create_task(signer.async_sign_raw(b"filling", "sha256"))
        await arrived.wait()
        filling.cancel()
        await _settle()
        hold.set()
        async with asyncio.timeout(GUARD_S):
            return await waiting

    assert asyncio.run(scenario())
    assert twin.hashes_signed == 2


@pytest.mark.parametrize(
    "bounds",
    [{"commit_timeout_s": 0.3}, {"stall_s": 0.5}],
    ids=["commit-timeout", "stall-bound"],
)
def test_a_service_that_never_answers_fails_the_documents_retryable_within_the_bound(
    bounds: dict[str, float],
) -> None:
    # Each bound alone ends the wait: the commit's own, and the document's (no commit ended).
    twin = CscTwin(hold=asyncio.Event())  # never set: the service accepts and never answers
    signer = _signer(twin, batch_size=3, **({"commit_timeout_s": 60.0, "stall_s": 60.0} | bounds))

    async def scenario() -> list[BaseException | bytes]:
        documents = [signer.async_sign_raw(bytes([i]), "sha256") for i in range(5)]
        async with asyncio.timeout(GUARD_S):
            return await asyncio.gather(*documents, return_exceptions=True)

    started = time.monotonic()
    outcomes = asyncio.run(scenario())
    assert time.monotonic() - started < 2.0
    assert all(isinstance(o, RemoteSignerUnavailableError) for o in outcomes), outcomes
    assert "did not sign" in str(outcomes[0]) or "did not answer" in str(outcomes[0])


def test_a_commit_that_fails_fails_every_document_of_the_batch_retryable() -> None:
    twin = CscTwin(fail=True)
    signer = _signer(twin, batch_size=2)

    async def scenario() -> list[BaseException | bytes]:
        documents = [signer.async_sign_raw(bytes([i]), "sha256") for i in range(3)]
        async with asyncio.timeout(GUARD_S):
            return await asyncio.gather(*documents, return_exceptions=True)

    outcomes = asyncio.run(scenario())
    assert all(isinstance(o, RemoteSignerUnavailableError) for o in outcomes), outcomes
    assert "ClientConnectionError" in str(outcomes[0])


def test_a_batch_left_behind_by_an_earlier_event_loop_does_not_block_the_next() -> None:
    # Each sign_batch runs in an event loop of its own; a run stopped mid-batch leaves a batch
    # that nobody will commit and whose waiters belonged to the closed loop.
    twin = CscTwin()
    signer = _signer(twin, batch_size=10)

    async def abandoned() -> None:
        document = asyncio.create_task(signer.async_sign_raw(b"abandoned", "sha256"))
        await _settle()  # its hash is in the batch; the loop ends before the timer commits
        assert not document.done()

    asyncio.run(abandoned())

    async def next_batch() -> bytes:
        async with asyncio.timeout(GUARD_S):
            return await signer.async_sign_raw(b"next", "sha256")

    assert asyncio.run(next_batch())
    assert twin.hashes_signed == 1  # the abandoned hash is not authorised nor signed


@pytest.mark.parametrize("documents", [1, 9, 10, 11, 25, 35])
def test_every_document_count_is_signed_in_full_batches_and_one_partial(documents: int) -> None:
    twin = CscTwin()
    signer = _signer(twin, batch_size=10)

    async def scenario() -> list[bytes]:
        async with asyncio.timeout(GUARD_S):
            return list(
                await asyncio.gather(
                    *(signer.async_sign_raw(i.to_bytes(2), "sha256") for i in range(documents))
                )
            )

    assert len(asyncio.run(scenario())) == documents
    assert twin.hashes_signed == documents
    assert twin.requests.count("signatures/signHash") == -(-documents // 10)

"""Reads that a process serves from its memory of a stream, on DynamoDB Local.

A process that served a stream's newest read skips reading the stream item on the next
one. These tests run two StreamService instances on one table, as two processes would,
so that one of them has a memory the other has made stale.
"""

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.errors import StreamGone
from chalicelib.polling import PendingSignal
from chalicelib.streams import ReadResult, StreamService
from tests.integration.inprocess import Harness, random_ispb


@pytest.fixture(scope="module")
def harness(dynamodb_endpoint: str) -> Iterator[Harness]:
    # A lease far above the wait, so that a follow-up read may skip the stream item.
    harness = Harness.create(dynamodb_endpoint, lease_seconds=60.0)
    yield harness
    harness.faults.disarm()


@pytest.fixture
def other_process(harness: Harness) -> StreamService:
    return StreamService(
        harness.store,
        harness.settings,
        PendingSignal(),
        clock=harness.clock,
        monotonic=time.monotonic,
    )


class OperationLog:
    """The DynamoDB operations a client sends, in order."""

    def __init__(self, client: Any) -> None:
        self.names: list[str] = []
        self._client = client
        client.meta.events.register("before-call.dynamodb.*", self._record)

    def _record(self, model: Any, **kwargs: Any) -> None:
        self.names.append(model.name)

    def close(self) -> None:
        self._client.meta.events.unregister("before-call.dynamodb.*", self._record)


@pytest.fixture
def operations(harness: Harness) -> Iterator[OperationLog]:
    log = OperationLog(harness.client)
    yield log
    log.close()


def read_in(service: StreamService, harness: Harness, ispb: str, link_id: str) -> ReadResult:
    return service.read(ispb, link_id, harness.settings.batch_size, time.monotonic())


def test_follow_up_read_skips_stream_item(harness: Harness, operations: OperationLog) -> None:
    ispb = random_ispb()
    harness.insert(ispb, 6)
    first = harness.start(ispb)
    operations.names.clear()

    second = harness.read(ispb, first.link_id)

    assert len(second.end_to_end_ids) == 3
    assert operations.names == ["Query", "TransactWriteItems"]
    stream = harness.store.get_streams([first.stream_id])[0]
    assert stream.link == 3
    assert stream.acked == 1


def test_empty_read_confirms_and_renews(harness: Harness) -> None:
    ispb = random_ispb()
    harness.insert(ispb, 2)
    first = harness.start(ispb)
    harness.clock.advance(10)

    empty = harness.read(ispb, first.link_id)

    stream = harness.store.get_streams([first.stream_id])[0]
    assert empty.end_to_end_ids == ()
    assert empty.link_id == first.link_id
    assert stream.acked == 1
    assert stream.lease_until == harness.clock() + harness.settings.lease_seconds


def test_stale_memory_repeats_served_read(harness: Harness, other_process: StreamService) -> None:
    ispb = random_ispb()
    harness.insert(ispb, 6)
    first = harness.start(ispb)
    served_elsewhere = read_in(other_process, harness, ispb, first.link_id)

    repeated = harness.read(ispb, first.link_id)

    assert repeated.retried is True
    assert repeated.end_to_end_ids == served_elsewhere.end_to_end_ids
    assert repeated.link_id == served_elsewhere.link_id


def test_closed_stream_claims_nothing(harness: Harness, other_process: StreamService) -> None:
    ispb = random_ispb()
    harness.insert(ispb, 3)
    first = harness.start(ispb)
    other_process.close(ispb, first.link_id)
    created = harness.insert(ispb, 2)

    with pytest.raises(StreamGone):
        harness.read(ispb, first.link_id)

    pending = harness.store.pending_messages(ispb, 10)
    assert [entry.end_to_end_id for entry in pending] == created


def wait_in_thread(
    harness: Harness, ispb: str, link_id: str, seconds: float
) -> tuple[threading.Thread, list[BaseException | ReadResult]]:
    """Start a read that waits up to `seconds` in a thread; return it and its outcome."""
    outcome: list[BaseException | ReadResult] = []

    def wait() -> None:
        deadline = time.monotonic() + seconds
        try:
            outcome.append(harness.service.read(ispb, link_id, 3, deadline))
        except StreamGone as exc:
            outcome.append(exc)

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    time.sleep(0.2)
    return waiter, outcome


def test_waiting_read_of_closed_stream_gone(harness: Harness, other_process: StreamService) -> None:
    ispb = random_ispb()
    harness.insert(ispb, 1)
    first = harness.start(ispb)
    waiter, outcome = wait_in_thread(harness, ispb, first.link_id, harness.settings.wait_seconds)

    other_process.close(ispb, first.link_id)
    waiter.join(timeout=10)

    assert len(outcome) == 1
    assert isinstance(outcome[0], StreamGone)


def test_close_ends_waiting_read_of_same_process(harness: Harness) -> None:
    ispb = random_ispb()
    harness.insert(ispb, 1)
    first = harness.start(ispb)
    # A wait far longer than the join below, so the read can only end because of the close.
    waiter, outcome = wait_in_thread(harness, ispb, first.link_id, 60.0)

    harness.close(ispb, first.link_id)
    waiter.join(timeout=20)

    assert not waiter.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], StreamGone)

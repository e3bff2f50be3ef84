"""Reads that a process serves from its memory of a stream, on DynamoDB Local.

A process that served a stream's newest read skips reading the stream item on the next
one. These tests run two StreamService instances on one table, as two processes would,
so that one of them has a memory the other has made stale.
"""

import threading
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.errors import StreamGone
from chalicelib.messages import generate_messages
from chalicelib.polling import PendingSignal
from chalicelib.store import message_key
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


def insert_share(harness: Harness, ispb: str, share: int, count: int) -> list[str]:
    """Store `count` messages that all belong to claim share `share`, oldest first."""
    spread = harness.settings.claim_spread
    messages = []
    while len(messages) < count:
        for message in generate_messages(ispb, 50, datetime.now(UTC)):
            if zlib.crc32(message.end_to_end_id.encode()) % spread == share:
                messages.append(message)
    return harness.store.insert_messages(messages[:count])


def spare_share_kept(harness: Harness, ispb: str) -> tuple[ReadResult, list[str]]:
    """Start a stream in slot 0, make it meet competition, and read once more.

    Returns that read and the messages stored. The read claims one batch of its share and
    keeps the rest of what it saw of that share for the next read.
    """
    created = insert_share(harness, ispb, share=0, count=4 * harness.settings.batch_size)
    first = harness.start(ispb)
    # As after a claim lost to another stream of the ISPB.
    harness.service._note_contention(first.stream_id, lost=True)
    return harness.read(ispb, first.link_id), created


def test_spare_share_read_skips_query(harness: Harness, operations: OperationLog) -> None:
    ispb = random_ispb()
    batch = harness.settings.batch_size
    second, created = spare_share_kept(harness, ispb)
    operations.names.clear()

    third = harness.read(ispb, second.link_id)

    assert operations.names == ["TransactWriteItems"]
    assert list(second.end_to_end_ids) == created[batch : 2 * batch]
    assert list(third.end_to_end_ids) == created[2 * batch : 3 * batch]


def test_spare_share_claimed_elsewhere_skipped(harness: Harness, operations: OperationLog) -> None:
    ispb = random_ispb()
    batch = harness.settings.batch_size
    second, created = spare_share_kept(harness, ispb)
    claimed_elsewhere = created[2 * batch : 3 * batch]
    for end_to_end_id in claimed_elsewhere:
        harness.client.update_item(
            TableName=harness.table_name,
            Key={"pk": {"S": message_key(end_to_end_id)}},
            UpdateExpression="REMOVE queue_key SET claim = :other",
            ExpressionAttributeValues={":other": {"S": "another-stream"}},
        )
    operations.names.clear()

    third = harness.read(ispb, second.link_id)

    assert operations.names == ["TransactWriteItems", "Query", "TransactWriteItems"]
    assert list(third.end_to_end_ids) == created[3 * batch :]
    assert set(harness.message_queues(claimed_elsewhere).values()) == {"another-stream"}

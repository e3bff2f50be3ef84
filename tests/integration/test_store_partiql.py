"""PixStore message operations on DynamoDB Local.

They run PartiQL batches with conditions, which moto cannot check: its PartiQL rejects `?`
parameters in INSERT and several SET clauses in UPDATE, and it applies an UPDATE whose
WHERE condition fails. Claims race here too, which only DynamoDB Local serializes.
"""

import secrets
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.messages import Message, generate_messages
from chalicelib.store import ClaimOutcome, PixStore, QueueEntry
from tests.integration.fakes import ReplayingClient

RETENTION_SECONDS = 3600


@pytest.fixture
def store(dynamodb: Any, table_name: str) -> PixStore:
    return PixStore(dynamodb, table_name, time.time, RETENTION_SECONDS)


@pytest.fixture
def stream_a() -> str:
    return secrets.token_hex(16)


@pytest.fixture
def stream_b() -> str:
    return secrets.token_hex(16)


def make(ispb: str, count: int) -> list[Message]:
    return generate_messages(ispb, count, datetime.now(UTC))


def ids(entries: list[QueueEntry]) -> list[str]:
    return [entry.end_to_end_id for entry in entries]


def test_insert_stores_pending_oldest_first(store: PixStore, ispb: str) -> None:
    messages = make(ispb, 30)

    inserted = store.insert_messages(messages)
    pending = store.pending_messages(ispb, 100)

    assert inserted == [m.end_to_end_id for m in messages]
    assert ids(pending) == inserted
    assert [entry.body for entry in pending] == [m.body for m in messages]


def test_insert_is_idempotent_per_end_to_end_id(store: PixStore, ispb: str) -> None:
    messages = make(ispb, 3)
    store.insert_messages(messages[:2])

    inserted = store.insert_messages(messages)

    assert inserted == [messages[2].end_to_end_id]
    assert len(store.pending_messages(ispb, 100)) == 3


def test_pending_respects_limit(store: PixStore, ispb: str) -> None:
    messages = make(ispb, 12)
    store.insert_messages(messages)

    pending = store.pending_messages(ispb, 5)

    assert ids(pending) == [m.end_to_end_id for m in messages[:5]]


def open_streams(store: PixStore, ispb: str, *stream_ids: str) -> None:
    for stream_id in stream_ids:
        assert store.open_stream(ispb, stream_id, 6, time.time() + 60, 0)


def claim(
    store: PixStore, ispb: str, entries: list[QueueEntry], stream_id: str, link: int = 1
) -> ClaimOutcome:
    last_sort = max(e.queue_sort for e in entries)
    attempt = f"attempt-{stream_id}-{link}"
    return store.claim_read(ispb, entries, stream_id, link, attempt, time.time() + 60, last_sort)


def test_claim_takes_messages_and_records_read(store: PixStore, ispb: str, stream_a: str) -> None:
    open_streams(store, ispb, stream_a)
    store.insert_messages(make(ispb, 4))
    pending = store.pending_messages(ispb, 10)

    outcome = claim(store, ispb, pending[:3], stream_a)
    stream = store.get_streams([stream_a])[0]

    assert outcome.applied is True
    assert ids(store.pending_messages(ispb, 10)) == ids(pending[3:])
    assert stream.link == 2
    assert stream.acked == 0
    assert stream.inflight_read == 1
    assert list(stream.inflight_ids) == ids(pending[:3])
    assert stream.committed == f"attempt-{stream_a}-1"
    assert stream.last_sort == pending[2].queue_sort


def test_claimed_message_is_not_claimed_again(
    store: PixStore, ispb: str, stream_a: str, stream_b: str
) -> None:
    open_streams(store, ispb, stream_a, stream_b)
    store.insert_messages(make(ispb, 3))
    pending = store.pending_messages(ispb, 10)
    claim(store, ispb, pending[:2], stream_a)

    lost = claim(store, ispb, pending, stream_b)
    rest = claim(store, ispb, pending[2:], stream_b)

    assert lost.applied is False
    assert lost.rejected is False
    assert lost.lost == set(ids(pending[:2]))
    assert rest.applied is True
    assert list(store.get_streams([stream_b])[0].inflight_ids) == ids(pending[2:])
    assert list(store.get_streams([stream_a])[0].inflight_ids) == ids(pending[:2])


def test_claim_on_a_stale_link_writes_nothing(store: PixStore, ispb: str, stream_a: str) -> None:
    open_streams(store, ispb, stream_a)
    store.insert_messages(make(ispb, 2))
    first, second = store.pending_messages(ispb, 10)
    claim(store, ispb, [first], stream_a)

    stale = claim(store, ispb, [second], stream_a)

    assert stale.applied is False
    assert stale.rejected is True
    assert stale.stream is not None
    assert stale.stream["link"] == {"N": "2"}
    assert ids(store.pending_messages(ispb, 10)) == [second.end_to_end_id]


def test_release_returns_messages_in_order(store: PixStore, ispb: str, stream_a: str) -> None:
    open_streams(store, ispb, stream_a)
    store.insert_messages(make(ispb, 5))
    pending = store.pending_messages(ispb, 10)
    claim(store, ispb, pending[:3], stream_a)

    released = store.release(ispb, ids(pending[:3]), f"attempt-{stream_a}-1")

    assert released == 3
    assert ids(store.pending_messages(ispb, 10)) == ids(pending)


def test_second_release_changes_nothing(store: PixStore, ispb: str, stream_a: str) -> None:
    open_streams(store, ispb, stream_a)
    store.insert_messages(make(ispb, 2))
    pending = store.pending_messages(ispb, 10)
    claim(store, ispb, pending, stream_a)
    store.release(ispb, ids(pending), f"attempt-{stream_a}-1")

    released = store.release(ispb, ids(pending), f"attempt-{stream_a}-1")

    assert released == 0
    assert len(store.pending_messages(ispb, 10)) == 2


def test_stale_release_keeps_newer_claim(
    store: PixStore, ispb: str, stream_a: str, stream_b: str
) -> None:
    open_streams(store, ispb, stream_a, stream_b)
    store.insert_messages(make(ispb, 2))
    pending = store.pending_messages(ispb, 10)
    claim(store, ispb, pending, stream_a)
    store.release(ispb, ids(pending), f"attempt-{stream_a}-1")
    claim(store, ispb, store.pending_messages(ispb, 10), stream_b)

    released = store.release(ispb, ids(pending), f"attempt-{stream_a}-1")

    assert released == 0
    assert list(store.get_streams([stream_b])[0].inflight_ids) == ids(pending)
    assert store.pending_messages(ispb, 10) == []


def test_message_bodies_by_end_to_end_id(store: PixStore, ispb: str) -> None:
    messages = make(ispb, 3)
    store.insert_messages(messages)

    bodies = store.message_bodies([m.end_to_end_id for m in messages])

    assert bodies == {m.end_to_end_id: m.body for m in messages}


def test_racing_claims_share_no_message(store: PixStore, ispb: str) -> None:
    store.insert_messages(make(ispb, 60))
    streams = [secrets.token_hex(16) for _ in range(6)]
    for stream_id in streams:
        open_streams(store, ispb, stream_id)
    won: dict[str, list[str]] = {stream_id: [] for stream_id in streams}
    barrier = threading.Barrier(len(streams))

    def drain(stream_id: str) -> None:
        barrier.wait()
        link = 1
        for _ in range(200):
            pending = store.pending_messages(ispb, 10)
            if not pending:
                return
            if claim(store, ispb, pending, stream_id, link).applied:
                won[stream_id].extend(ids(pending))
                link += 1

    threads = [threading.Thread(target=drain, args=(s,)) for s in streams]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    claimed = [end_to_end_id for stream_id in streams for end_to_end_id in won[stream_id]]

    assert len(claimed) == len(set(claimed)) == 60
    assert store.pending_messages(ispb, 100) == []


def test_replayed_claim_applies_once(
    dynamodb: Any, table_name: str, ispb: str, stream_a: str
) -> None:
    store = PixStore(dynamodb, table_name, time.time, RETENTION_SECONDS)
    replaying = PixStore(
        ReplayingClient(dynamodb, frozenset({"transact_write_items"})),
        table_name,
        time.time,
        RETENTION_SECONDS,
    )
    open_streams(store, ispb, stream_a)
    store.insert_messages(make(ispb, 3))
    pending = store.pending_messages(ispb, 10)

    outcome = claim(replaying, ispb, pending, stream_a)

    assert outcome.applied is True
    assert store.get_streams([stream_a])[0].link == 2
    assert list(store.get_streams([stream_a])[0].inflight_ids) == ids(pending)

"""PixStore message operations on DynamoDB Local.

They run PartiQL batches with conditions, which moto cannot check: its PartiQL rejects
`?` parameters in INSERT and several SET clauses in UPDATE, and it applies an UPDATE
whose WHERE condition fails.
"""

import secrets
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.messages import Message, generate_messages
from chalicelib.store import PixStore, QueueEntry
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


def test_claim_moves_messages_to_stream(store: PixStore, ispb: str, stream_a: str) -> None:
    store.insert_messages(make(ispb, 4))
    pending = store.pending_messages(ispb, 10)

    won = store.claim(ispb, pending[:3], stream_a, 1, "attempt-a")
    held = store.stream_messages(stream_a, after_read=0)

    assert ids(won) == ids(pending[:3])
    assert ids(held) == ids(pending[:3])
    assert {entry.claim for entry in held} == {"attempt-a"}
    assert ids(store.pending_messages(ispb, 10)) == ids(pending[3:])


def test_claimed_message_is_not_claimed_again(
    store: PixStore, ispb: str, stream_a: str, stream_b: str
) -> None:
    store.insert_messages(make(ispb, 3))
    pending = store.pending_messages(ispb, 10)
    store.claim(ispb, pending[:2], stream_a, 1, "attempt-a")

    won = store.claim(ispb, pending, stream_b, 1, "attempt-b")

    assert ids(won) == ids(pending[2:])
    assert ids(store.stream_messages(stream_a, after_read=0)) == ids(pending[:2])


def test_stream_messages_skip_confirmed_reads(store: PixStore, ispb: str, stream_a: str) -> None:
    store.insert_messages(make(ispb, 4))
    pending = store.pending_messages(ispb, 10)
    store.claim(ispb, pending[:2], stream_a, 1, "read-1")
    store.claim(ispb, pending[2:], stream_a, 2, "read-2")

    after_first = store.stream_messages(stream_a, after_read=1)

    assert ids(after_first) == ids(pending[2:])


def test_release_returns_messages_in_order(store: PixStore, ispb: str, stream_a: str) -> None:
    store.insert_messages(make(ispb, 5))
    pending = store.pending_messages(ispb, 10)
    store.claim(ispb, pending[:3], stream_a, 1, "attempt-a")
    held = store.stream_messages(stream_a, after_read=0)

    released = store.release(ispb, stream_a, held)

    assert released == 3
    assert ids(store.pending_messages(ispb, 10)) == ids(pending)
    assert store.stream_messages(stream_a, after_read=0) == []


def test_second_release_changes_nothing(store: PixStore, ispb: str, stream_a: str) -> None:
    store.insert_messages(make(ispb, 2))
    store.claim(ispb, store.pending_messages(ispb, 10), stream_a, 1, "attempt-a")
    held = store.stream_messages(stream_a, after_read=0)
    store.release(ispb, stream_a, held)

    released = store.release(ispb, stream_a, held)

    assert released == 0
    assert len(store.pending_messages(ispb, 10)) == 2


def test_stale_release_keeps_newer_claim(
    store: PixStore, ispb: str, stream_a: str, stream_b: str
) -> None:
    store.insert_messages(make(ispb, 2))
    store.claim(ispb, store.pending_messages(ispb, 10), stream_a, 1, "attempt-a")
    held_by_a = store.stream_messages(stream_a, after_read=0)
    store.release(ispb, stream_a, held_by_a)
    store.claim(ispb, store.pending_messages(ispb, 10), stream_b, 1, "attempt-b")

    released = store.release(ispb, stream_a, held_by_a)

    assert released == 0
    assert ids(store.stream_messages(stream_b, after_read=0)) == ids(held_by_a)
    assert store.pending_messages(ispb, 10) == []


def test_message_bodies_by_end_to_end_id(store: PixStore, ispb: str) -> None:
    messages = make(ispb, 3)
    store.insert_messages(messages)

    bodies = store.message_bodies([m.end_to_end_id for m in messages])

    assert bodies == {m.end_to_end_id: m.body for m in messages}


def test_racing_claims_share_no_message(store: PixStore, ispb: str) -> None:
    store.insert_messages(make(ispb, 50))
    pending = store.pending_messages(ispb, 100)
    streams = [secrets.token_hex(16) for _ in range(6)]
    won: dict[str, list[str]] = {}
    barrier = threading.Barrier(len(streams))

    def claim(stream: str) -> None:
        barrier.wait()
        won[stream] = ids(store.claim(ispb, pending, stream, 1, f"attempt-{stream}"))

    threads = [threading.Thread(target=claim, args=(s,)) for s in streams]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    claimed = [end_to_end_id for stream in streams for end_to_end_id in won[stream]]

    assert len(claimed) == len(set(claimed))
    assert sorted(claimed) == sorted(ids(pending))
    for stream in streams:
        assert sorted(ids(store.stream_messages(stream, after_read=0))) == sorted(won[stream])


def test_replayed_claim_keeps_won_messages(
    dynamodb: Any, table_name: str, ispb: str, stream_a: str
) -> None:
    store = PixStore(dynamodb, table_name, time.time, RETENTION_SECONDS)
    replaying = PixStore(ReplayingClient(dynamodb), table_name, time.time, RETENTION_SECONDS)
    store.insert_messages(make(ispb, 3))
    pending = store.pending_messages(ispb, 10)

    won = replaying.claim(ispb, pending, stream_a, 1, "attempt-a")

    assert ids(won) == ids(pending)
    assert ids(store.stream_messages(stream_a, after_read=0)) == ids(pending)

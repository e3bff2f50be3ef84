"""PixStore on moto: streams, counters, transactions, conditional writes and store errors.

moto's PartiQL rejects `?` parameters in INSERT, rejects an UPDATE with several SET
clauses and applies an UPDATE whose WHERE condition fails, so the message operations
(insert, release) are tested on DynamoDB Local in tests/integration instead.
"""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib.errors import StoreUnavailable
from chalicelib.store import (
    STATE_CLOSED,
    STATE_EXPIRED,
    STATE_OPEN,
    PixStore,
    QueueEntry,
    StreamRecord,
    message_key,
    open_shard,
    pending_queue,
)
from tests.unit.conftest import FakeClock

ISPB = "12345678"
OTHER_ISPB = "87654321"
LEASE_SECONDS = 60.0


def stream_id(n: int) -> str:
    return f"{n:032x}"


def open_streams(store: PixStore, clock: FakeClock, count: int, limit: int = 6) -> list[bool]:
    return [
        store.open_stream(ISPB, stream_id(n), limit, clock() + LEASE_SECONDS, 0)
        for n in range(count)
    ]


def put_pending(dynamodb: Any, table_name: str, *end_to_end_ids: str) -> list[QueueEntry]:
    """Store pending messages directly, since moto's PartiQL cannot run the insert."""
    entries = []
    for position, end_to_end_id in enumerate(end_to_end_ids):
        entry = QueueEntry(end_to_end_id, "{}", f"{position:013d}#{end_to_end_id}")
        dynamodb.put_item(
            TableName=table_name,
            Item={
                "pk": {"S": message_key(end_to_end_id)},
                "ispb": {"S": ISPB},
                "body": {"S": entry.body},
                "queue_key": {"S": pending_queue(ISPB)},
                "queue_sort": {"S": entry.queue_sort},
            },
        )
        entries.append(entry)
    return entries


def claim(store: PixStore, clock: FakeClock, n: int, link: int, entries: list[QueueEntry]) -> Any:
    last_sort = max(e.queue_sort for e in entries)
    lease_until = clock() + LEASE_SECONDS
    return store.claim_read(ISPB, entries, stream_id(n), link, "attempt", lease_until, last_sort)


def record(store: PixStore, n: int) -> StreamRecord:
    item = store.get_stream_item(stream_id(n))
    assert item is not None
    return StreamRecord.from_item(item)


FailCalls = Callable[[str, str, int], list[int]]


@pytest.fixture
def fail_calls(dynamodb: Any) -> Iterator[FailCalls]:
    """Yield a function that makes the next calls of an operation fail before reaching moto.

    `fail(operation, code, times)` returns a list that grows by one entry per failed call.
    The hooks are removed after the test, since the moto client is shared.
    """
    registered: list[tuple[str, Callable[..., Any]]] = []

    def fail(operation: str, code: str, times: int) -> list[int]:
        failed: list[int] = []

        def handler(**kwargs: Any) -> tuple[Any, dict[str, Any]] | None:
            if len(failed) >= times:
                return None
            failed.append(1)
            error: dict[str, Any] = {
                "Error": {"Code": code, "Message": "injected by the test"},
                "ResponseMetadata": {"HTTPStatusCode": 400},
            }
            if code == "TransactionCanceledException":
                error["CancellationReasons"] = [{"Code": "TransactionConflict"}, {"Code": "None"}]
            return _FakeHttpResponse(400), error

        event = f"before-call.dynamodb.{operation}"
        dynamodb.meta.events.register(event, handler)
        registered.append((event, handler))
        return failed

    yield fail
    for event, handler in registered:
        dynamodb.meta.events.unregister(event, handler)


class _FakeHttpResponse:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        self.headers: dict[str, str] = {}
        self.content = b""


def test_open_stream_counts_toward_limit(store: PixStore, clock: FakeClock) -> None:
    opened = open_streams(store, clock, 3)

    assert opened == [True, True, True]
    assert store.open_stream_count(ISPB) == 3


def test_open_stream_beyond_limit_is_refused(store: PixStore, clock: FakeClock) -> None:
    opened = open_streams(store, clock, 8)

    assert opened == [True] * 6 + [False] * 2
    assert store.open_stream_count(ISPB) == 6
    assert store.get_stream_item(stream_id(6)) is None


def test_limit_is_per_ispb(store: PixStore, clock: FakeClock) -> None:
    open_streams(store, clock, 6)

    opened = store.open_stream(OTHER_ISPB, stream_id(99), 6, clock() + LEASE_SECONDS, 0)

    assert opened is True
    assert store.open_stream_count(OTHER_ISPB) == 1


def test_failed_open_transaction_leaves_counter(store: PixStore, clock: FakeClock) -> None:
    open_streams(store, clock, 1)

    # The same stream id again fails the Put's condition, which must undo the increment.
    reopened = store.open_stream(ISPB, stream_id(0), 6, clock() + LEASE_SECONDS, 0)

    assert reopened is False
    assert store.open_stream_count(ISPB) == 1


def test_new_stream_is_open_at_link_one(store: PixStore, clock: FakeClock) -> None:
    open_streams(store, clock, 1)

    stream = record(store, 0)

    assert stream.ispb == ISPB
    assert stream.state == STATE_OPEN
    assert stream.link == 1
    assert stream.acked == 0
    assert stream.lease_until == clock() + LEASE_SECONDS
    assert stream.indexed is True


def test_begin_read_renews_lease_and_confirms(
    store: PixStore, clock: FakeClock, dynamodb: Any, table_name: str
) -> None:
    open_streams(store, clock, 1)
    claim(store, clock, 0, 1, put_pending(dynamodb, table_name, "E1"))
    clock.advance(10)

    began = store.begin_read(ISPB, stream_id(0), 2, clock() + LEASE_SECONDS)
    stream = record(store, 0)

    assert began.applied is True
    assert began.item is not None
    assert began.item["acked"] == {"N": "0"}
    assert stream.acked == 1
    assert stream.lease_until == clock() + LEASE_SECONDS


def test_begin_read_on_old_link_returns_item(
    store: PixStore, clock: FakeClock, dynamodb: Any, table_name: str
) -> None:
    open_streams(store, clock, 1)
    claim(store, clock, 0, 1, put_pending(dynamodb, table_name, "E1"))
    lease_until = record(store, 0).lease_until
    clock.advance(10)

    began = store.begin_read(ISPB, stream_id(0), 1, clock() + LEASE_SECONDS)

    assert began.applied is False
    assert began.item is not None
    assert began.item["link"] == {"N": "2"}
    assert record(store, 0).lease_until == lease_until


def test_begin_read_of_other_ispb_is_refused(store: PixStore, clock: FakeClock) -> None:
    open_streams(store, clock, 1)

    began = store.begin_read(OTHER_ISPB, stream_id(0), 1, clock() + LEASE_SECONDS)

    assert began.applied is False
    assert began.item is not None
    assert began.item["ispb"] == {"S": ISPB}


def test_begin_read_after_lease_is_refused(store: PixStore, clock: FakeClock) -> None:
    open_streams(store, clock, 1)
    clock.advance(LEASE_SECONDS)

    began = store.begin_read(ISPB, stream_id(0), 1, clock() + LEASE_SECONDS)

    assert began.applied is False


def test_begin_read_of_unknown_stream_has_no_item(store: PixStore, clock: FakeClock) -> None:
    began = store.begin_read(ISPB, stream_id(42), 1, clock() + LEASE_SECONDS)

    assert began.applied is False
    assert began.item is None


def test_claim_read_advances_link_once(
    store: PixStore, clock: FakeClock, dynamodb: Any, table_name: str
) -> None:
    open_streams(store, clock, 1)
    first_batch = put_pending(dynamodb, table_name, "E1", "E2")
    (late,) = put_pending(dynamodb, table_name, "E3")

    first = claim(store, clock, 0, 1, first_batch)
    second = claim(store, clock, 0, 1, [late])
    stream = record(store, 0)
    third = dynamodb.get_item(TableName=table_name, Key={"pk": {"S": message_key("E3")}})

    assert first.applied is True
    assert second.applied is False
    assert second.rejected is True
    assert second.stream is not None
    assert second.stream["link"] == {"N": "2"}
    assert stream.link == 2
    assert stream.inflight_read == 1
    assert stream.inflight_ids == ("E1", "E2")
    assert third["Item"]["queue_key"] == {"S": pending_queue(ISPB)}


def test_claim_read_of_claimed_message_writes_nothing(
    store: PixStore, clock: FakeClock, dynamodb: Any, table_name: str
) -> None:
    open_streams(store, clock, 2)
    claimed, pending = put_pending(dynamodb, table_name, "E1", "E2")
    claim(store, clock, 0, 1, [claimed])

    lost = claim(store, clock, 1, 1, [claimed, pending])
    item = dynamodb.get_item(TableName=table_name, Key={"pk": {"S": message_key("E2")}})

    assert lost.applied is False
    assert lost.rejected is False
    assert lost.lost == {"E1"}
    assert record(store, 1).link == 1
    assert item["Item"]["queue_key"] == {"S": pending_queue(ISPB)}


def test_renew_lease_only_on_newest_link(store: PixStore, clock: FakeClock) -> None:
    open_streams(store, clock, 1)
    clock.advance(30)

    stale = store.renew_lease(stream_id(0), 2, 0, clock() + LEASE_SECONDS)
    renewed = store.renew_lease(stream_id(0), 1, 0, clock() + LEASE_SECONDS)

    assert stale.applied is False
    assert renewed.applied is True
    assert record(store, 0).lease_until == clock() + LEASE_SECONDS


def test_renew_lease_requires_same_confirmation(store: PixStore, clock: FakeClock) -> None:
    open_streams(store, clock, 1)
    opened_lease = record(store, 0).lease_until
    clock.advance(10)

    renewed = store.renew_lease(stream_id(0), 1, 1, clock() + LEASE_SECONDS)

    assert renewed.applied is False
    assert record(store, 0).lease_until == opened_lease


def close(store: PixStore, stream: StreamRecord, acked: int = 0) -> bool:
    values = {":link": {"N": str(stream.link)}}
    return store.end_stream(stream, STATE_CLOSED, "link = :link", values, acked=acked).applied


def test_end_stream_frees_slot_once(store: PixStore, clock: FakeClock) -> None:
    open_streams(store, clock, 2)
    stream = record(store, 0)

    first = close(store, stream)
    second = close(store, stream)

    assert first is True
    assert second is False
    assert store.open_stream_count(ISPB) == 1
    assert record(store, 0).state == STATE_CLOSED


def test_failed_end_condition_keeps_slot(store: PixStore, clock: FakeClock) -> None:
    open_streams(store, clock, 1)
    stream = record(store, 0)
    now = {":now": {"N": repr(clock())}}

    ended = store.end_stream(stream, STATE_EXPIRED, "lease_until <= :now", now)

    assert ended.applied is False
    assert ended.item is not None
    assert ended.item["state"] == {"S": STATE_OPEN}
    assert store.open_stream_count(ISPB) == 1


def test_expired_stream_can_be_ended(store: PixStore, clock: FakeClock) -> None:
    open_streams(store, clock, 1)
    clock.advance(LEASE_SECONDS)
    now = {":now": {"N": repr(clock())}}

    ended = store.end_stream(record(store, 0), STATE_EXPIRED, "lease_until <= :now", now)

    assert ended.applied is True
    assert store.open_stream_count(ISPB) == 0
    assert record(store, 0).state == STATE_EXPIRED


def test_freed_slot_can_be_taken_again(store: PixStore, clock: FakeClock) -> None:
    open_streams(store, clock, 6)
    close(store, record(store, 0))

    reopened = store.open_stream(ISPB, stream_id(50), 6, clock() + LEASE_SECONDS, 0)

    assert reopened is True
    assert store.open_stream_count(ISPB) == 6


def test_open_streams_are_listed_by_ispb(store: PixStore, clock: FakeClock) -> None:
    open_streams(store, clock, 2)
    store.open_stream(OTHER_ISPB, stream_id(9), 6, clock() + LEASE_SECONDS, 0)

    mine = store.indexed_stream_ids(open_shard(ISPB), ISPB)

    assert sorted(mine) == [stream_id(0), stream_id(1)]
    assert stream_id(9) in store.indexed_stream_ids(open_shard(OTHER_ISPB))


def test_forget_stream_unlists_ended_stream(store: PixStore, clock: FakeClock) -> None:
    open_streams(store, clock, 2)
    close(store, record(store, 0))

    store.forget_stream(stream_id(0))
    forgotten = record(store, 0)

    assert store.indexed_stream_ids(open_shard(ISPB), ISPB) == [stream_id(1)]
    assert forgotten.indexed is False
    item = store.get_stream_item(stream_id(0))
    assert item is not None
    assert int(item["expires_at"]["N"]) == int(clock()) + 7 * 86400


def test_forget_stream_refuses_open_stream(store: PixStore, clock: FakeClock) -> None:
    open_streams(store, clock, 1)

    with pytest.raises(ClientError) as raised:
        store.forget_stream(stream_id(0))

    assert raised.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert record(store, 0).indexed is True


def test_get_streams_reads_many(store: PixStore, clock: FakeClock) -> None:
    open_streams(store, clock, 3)

    streams = store.get_streams([stream_id(0), stream_id(2), stream_id(77)])

    assert sorted(s.stream_id for s in streams) == [stream_id(0), stream_id(2)]


def test_counter_of_unknown_ispb_is_zero(store: PixStore) -> None:
    assert store.open_stream_count("00000001") == 0


@pytest.mark.parametrize(
    "code",
    ["ProvisionedThroughputExceededException", "ThrottlingException", "InternalServerError"],
)
def test_throttling_becomes_store_unavailable(
    fail_calls: FailCalls, store: PixStore, code: str
) -> None:
    fail_calls("GetItem", code, 1)

    with pytest.raises(StoreUnavailable) as raised:
        store.open_stream_count(ISPB)

    assert raised.value.code == code
    assert raised.value.operation == "GetItem"


def test_client_bug_is_not_store_unavailable(fail_calls: FailCalls, store: PixStore) -> None:
    fail_calls("GetItem", "ValidationException", 1)

    with pytest.raises(ClientError) as raised:
        store.open_stream_count(ISPB)

    assert raised.value.response["Error"]["Code"] == "ValidationException"


def test_transaction_conflict_is_retried(
    fail_calls: FailCalls, store: PixStore, clock: FakeClock
) -> None:
    failed = fail_calls("TransactWriteItems", "TransactionCanceledException", 2)

    opened = open_streams(store, clock, 1)

    assert len(failed) == 2
    assert opened == [True]
    assert store.open_stream_count(ISPB) == 1


def test_lasting_transaction_conflict_is_unavailable(
    fail_calls: FailCalls, store: PixStore, clock: FakeClock
) -> None:
    failed = fail_calls("TransactWriteItems", "TransactionCanceledException", 3)

    with pytest.raises(StoreUnavailable) as raised:
        open_streams(store, clock, 1)

    assert len(failed) == 3
    assert raised.value.code == "TransactionConflict"
    assert store.open_stream_count(ISPB) == 0


def test_table_comes_from_template(dynamodb: Any, table_name: str) -> None:
    table = dynamodb.describe_table(TableName=table_name)["Table"]
    indexes = {index["IndexName"] for index in table["GlobalSecondaryIndexes"]}

    assert indexes == {"queue", "open-streams"}
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]

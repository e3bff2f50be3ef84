"""All DynamoDB access: one table holding messages, streams and per-ISPB stream counters.

Items, by partition key:

- ``MSG#<endToEndId>``: one message. While pending, its ``queue_key`` is ``P#<ispb>`` and its
  ``queue_sort`` orders it by arrival, so the ``queue`` index lists an ISPB's pending messages
  oldest first. A claim removes ``queue_key``, which drops the message from that index, and
  records the claiming read's attempt token in ``claim``.
- ``STREAM#<id>``: one stream: its newest link number, the last read it confirmed, its lease,
  and the messages of its newest read. Open streams also appear in the ``open-streams`` index.
  A read's claims and the stream's move to its next link are one transaction, so no message
  is ever held by a read that the stream does not record.
- ``ISPB#<ispb>``: the number of open streams of that ISPB, the counter behind the limit.
- ``KEY#<sha256 hex>``: an API key, stored only as the SHA-256 hash of the key, and the ISPB
  it grants access to.
- ``SLOTS#<ispb>``: the number of that ISPB's streams that take part in claim spreading,
  counted up before a start and down when a start fails or a stream ends.

Every state change is a conditional write; nothing is read, checked, then written.
"""

import logging
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import capacity, tracing
from chalicelib.errors import StoreUnavailable
from chalicelib.messages import Message

logger = logging.getLogger(__name__)

QUEUE_INDEX = "queue"
OPEN_STREAMS_INDEX = "open-streams"
OPEN_SHARDS = 16

# PartiQL batches take at most 25 statements; BatchGetItem at most 100 keys.
PARTIQL_BATCH_LIMIT = 25
BATCH_GET_LIMIT = 100

# Error codes that mean "try again later", as opposed to a bug or a failed condition.
UNAVAILABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionConflictException",
        "TransactionInProgressException",
        "LimitExceededException",
    }
)
# Per-statement error codes of a PartiQL batch that mean the statement did not run.
STATEMENT_UNAVAILABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceeded",
        "ThrottlingError",
        "InternalServerError",
        "RequestLimitExceeded",
        "TransactionConflict",
    }
)

STATE_OPEN = "open"
STATE_CLOSED = "closed"
STATE_EXPIRED = "expired"

Item = dict[str, Any]


def message_key(end_to_end_id: str) -> str:
    return f"MSG#{end_to_end_id}"


def stream_key(stream_id: str) -> str:
    return f"STREAM#{stream_id}"


def counter_key(ispb: str) -> str:
    return f"ISPB#{ispb}"


def slots_key(ispb: str) -> str:
    # Apart from the ISPB#<ispb> counter: DynamoDB fails a plain write to an item that a
    # running transaction holds, and that counter is only written in transactions.
    return f"SLOTS#{ispb}"


def pending_queue(ispb: str) -> str:
    return f"P#{ispb}"


def api_key_key(key_hash: str) -> str:
    return f"KEY#{key_hash}"


def open_shard(ispb: str) -> str:
    # Streams are spread over a few index partitions by ISPB, so that one Query finds all
    # streams of an ISPB and a sweep reads OPEN_SHARDS partitions instead of a Scan.
    return str(int(ispb) % OPEN_SHARDS)


@dataclass(frozen=True)
class QueueEntry:
    """A message as the ``queue`` index returns it."""

    end_to_end_id: str
    body: str
    queue_sort: str


@dataclass(frozen=True)
class StreamRecord:
    stream_id: str
    ispb: str
    state: str
    link: int
    acked: int
    lease_until: float
    inflight_read: int
    inflight_ids: tuple[str, ...]
    committed: str | None
    slot: int
    indexed: bool
    # Queue position of the newest message the stream has delivered; its reads prefer
    # messages after it, so that one stream's deliveries stay in arrival order.
    last_sort: str | None = None

    @classmethod
    def from_item(cls, item: Item) -> "StreamRecord":
        ids = item.get("inflight_ids", {}).get("L", [])
        return cls(
            stream_id=item["pk"]["S"].removeprefix("STREAM#"),
            ispb=item["ispb"]["S"],
            state=item["state"]["S"],
            link=int(item["link"]["N"]),
            acked=int(item["acked"]["N"]),
            lease_until=float(item["lease_until"]["N"]),
            inflight_read=int(item.get("inflight_read", {}).get("N", "0")),
            inflight_ids=tuple(v["S"] for v in ids),
            committed=item.get("committed", {}).get("S"),
            slot=int(item.get("slot", {}).get("N", "0")),
            indexed="open_shard" in item,
            last_sort=item.get("last_sort", {}).get("S"),
        )


@dataclass(frozen=True)
class Outcome:
    """Result of a conditional write: whether it applied, and the item as DynamoDB had it."""

    applied: bool
    item: Item | None


@dataclass(frozen=True)
class ClaimOutcome:
    """Result of claiming messages for a read.

    When the claim did not apply, nothing was written: `lost` names the messages that
    another stream holds, and `rejected` is True when the stream itself rejected the read,
    with `stream` the stream item as it was.
    """

    applied: bool
    lost: frozenset[str] = frozenset()
    rejected: bool = False
    stream: Item | None = None


def _is_unavailable(exc: Exception) -> str | None:
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in UNAVAILABLE_CODES or status >= 500:
            return code or f"HTTP {status}"
        return None
    if isinstance(exc, BotoCoreError):
        return type(exc).__name__
    return None


class PixStore:
    """The single owner of DynamoDB reads and writes.

    `client` is a low-level DynamoDB client, which boto3 documents as thread-safe, so one
    instance serves every thread. `clock` returns the time in seconds since the epoch.
    """

    def __init__(
        self,
        client: Any,
        table_name: str,
        clock: Callable[[], float],
        retention_seconds: int,
    ) -> None:
        self._client = client
        self._table = table_name
        self._clock = clock
        self._retention_seconds = retention_seconds

    @property
    def table_name(self) -> str:
        return self._table

    @contextmanager
    def _call(self, operation: str) -> Iterator[tracing.Span]:
        """Trace one store operation and turn "try again later" errors into StoreUnavailable."""
        with tracing.subsegment(f"PixStore.{operation}") as span:
            try:
                yield span
            except (ClientError, BotoCoreError) as exc:
                code = _is_unavailable(exc)
                if code is None:
                    raise
                logger.warning("DynamoDB %s failed: %s", operation, code)
                raise StoreUnavailable(operation, code) from exc

    def _request(self, operation: str, method: str, **kwargs: Any) -> dict[str, Any]:
        with self._call(operation) as span:
            response: dict[str, Any] = getattr(self._client, method)(
                ReturnConsumedCapacity="TOTAL", **kwargs
            )
            span.metadata("statements", len(kwargs.get("Statements", ())) or None)
            span.metadata("count", response.get("Count"))
            span.metadata("consumed_capacity", response.get("ConsumedCapacity"))
        capacity.record(operation, response)
        return response

    def _conditional(self, operation: str, method: str, **kwargs: Any) -> Outcome:
        """Run a conditional single-item write; a failed condition returns the current item."""
        try:
            with self._call(operation):
                response = getattr(self._client, method)(
                    ReturnConsumedCapacity="TOTAL",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    **kwargs,
                )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            error: dict[str, Any] = dict(exc.response)
            capacity.record(operation, error)
            return Outcome(applied=False, item=error.get("Item"))
        capacity.record(operation, response)
        return Outcome(applied=True, item=response.get("Attributes"))

    def _batch_statements(self, operation: str, statements: list[Item]) -> list[Item]:
        """Run PartiQL statements in batches; return each statement's response entry."""
        results: list[Item] = []
        for start in range(0, len(statements), PARTIQL_BATCH_LIMIT):
            chunk = statements[start : start + PARTIQL_BATCH_LIMIT]
            response = self._request(operation, "batch_execute_statement", Statements=chunk)
            responses = response["Responses"]
            failed = sum(1 for r in responses if "Error" in r)
            capacity.record_statements(operation, len(chunk), failed)
            results.extend(responses)
        unavailable = [
            r["Error"]["Code"]
            for r in results
            if r.get("Error", {}).get("Code") in STATEMENT_UNAVAILABLE_CODES
        ]
        if unavailable:
            # The statements that did run are conditional and idempotent for their caller,
            # who either keeps them (claims) or repeats the whole batch (inserts, releases).
            logger.warning("DynamoDB %s: %d statements throttled", operation, len(unavailable))
        return results

    # Messages

    def insert_messages(self, messages: Sequence[Message]) -> list[str]:
        """Store new pending messages; return the endToEndIds that were not stored before.

        PartiQL ``INSERT`` fails per statement when the key exists, which makes ingestion
        idempotent: the same endToEndId twice is stored once. Each call tags its items with
        a random token, so that a statement botocore repeated after a lost reply, which
        fails as a duplicate of its own first run, still counts as stored by this call.
        """
        now_ms = int(self._clock() * 1000)
        token = secrets.token_hex(8)
        statements = [
            {
                "Statement": (
                    f"INSERT INTO \"{self._table}\" VALUE {{'pk': ?, 'ispb': ?, 'body': ?, "
                    "'queue_key': ?, 'queue_sort': ?, 'created_at': ?, 'ingest': ?}"
                ),
                "Parameters": [
                    {"S": message_key(m.end_to_end_id)},
                    {"S": m.receiver_ispb},
                    {"S": m.body},
                    {"S": pending_queue(m.receiver_ispb)},
                    # Arrival time, then position in the batch: the queue's order.
                    {"S": f"{now_ms:013d}.{position:04d}#{m.end_to_end_id}"},
                    {"N": str(now_ms)},
                    {"S": token},
                ],
            }
            for position, m in enumerate(messages)
        ]
        results = self._batch_statements("InsertMessages", statements)
        codes = [result.get("Error", {}).get("Code") for result in results]
        failures = [code for code in codes if code not in (None, "DuplicateItem")]
        if failures:
            raise StoreUnavailable("InsertMessages", failures[0])
        duplicates = [m.end_to_end_id for m, c in zip(messages, codes, strict=True) if c]
        ours = self._ingested_with(token, duplicates) if duplicates else set()
        return [
            m.end_to_end_id
            for m, code in zip(messages, codes, strict=True)
            if code is None or m.end_to_end_id in ours
        ]

    def _ingested_with(self, token: str, end_to_end_ids: Sequence[str]) -> set[str]:
        """Return those of `end_to_end_ids` whose item an insert with `token` stored."""
        found: set[str] = set()
        for start in range(0, len(end_to_end_ids), BATCH_GET_LIMIT):
            chunk = end_to_end_ids[start : start + BATCH_GET_LIMIT]
            keys = [{"pk": {"S": message_key(i)}} for i in chunk]
            for item in self._batch_get(keys, "pk, ingest"):
                if item.get("ingest", {}).get("S") == token:
                    found.add(item["pk"]["S"].removeprefix("MSG#"))
        return found

    def pending_messages(self, ispb: str, limit: int) -> list[QueueEntry]:
        """Return up to `limit` pending messages of `ispb`, oldest first."""
        kwargs: Item = {
            "TableName": self._table,
            "IndexName": QUEUE_INDEX,
            "KeyConditionExpression": "queue_key = :q",
            "ExpressionAttributeValues": {":q": {"S": pending_queue(ispb)}},
            "ProjectionExpression": "pk, queue_sort, body",
        }
        entries: list[QueueEntry] = []
        while len(entries) < limit:
            kwargs["Limit"] = limit - len(entries)
            response = self._request("Query", "query", **kwargs)
            entries.extend(_queue_entry(item) for item in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if last is None:
                break
            kwargs["ExclusiveStartKey"] = last
        return entries

    def claim_read(
        self,
        ispb: str,
        entries: Sequence[QueueEntry],
        stream_id: str,
        link: int,
        attempt: str,
        lease_until: float,
        last_sort: str,
    ) -> ClaimOutcome:
        """Claim pending messages for read `link` of a stream and record the read, atomically.

        One transaction takes every message, each only while it is still pending, and moves
        the stream to link ``link + 1`` with these messages in flight. That write also
        confirms the reads before `link`, renews the lease and records `last_sort`, the queue
        position of the newest message claimed. It applies only to an open,
        unexpired stream of `ispb` whose newest link is `link`, so of two requests racing on
        one link, or on one message, exactly one wins and the other writes nothing.
        """
        ids = [entry.end_to_end_id for entry in entries]
        expires_at = int(self._clock()) + self._retention_seconds
        items: list[Item] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {"pk": {"S": message_key(end_to_end_id)}},
                    "UpdateExpression": "REMOVE queue_key SET claim = :attempt, expires_at = :exp",
                    "ConditionExpression": "queue_key = :pending",
                    "ExpressionAttributeValues": {
                        ":attempt": {"S": attempt},
                        ":exp": {"N": str(expires_at)},
                        ":pending": {"S": pending_queue(ispb)},
                    },
                }
            }
            for end_to_end_id in ids
        ]
        items.append(
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {"pk": {"S": stream_key(stream_id)}},
                    "UpdateExpression": (
                        "SET link = :next, acked = :acked, lease_until = :lease, "
                        "inflight_read = :link, "
                        "inflight_ids = :ids, committed = :attempt, last_sort = :last_sort"
                    ),
                    "ConditionExpression": (
                        "ispb = :ispb AND #state = :open AND link = :link AND lease_until > :now"
                    ),
                    "ExpressionAttributeNames": {"#state": "state"},
                    "ExpressionAttributeValues": {
                        ":next": {"N": str(link + 1)},
                        ":acked": {"N": str(link - 1)},
                        ":lease": {"N": repr(lease_until)},
                        ":attempt": {"S": attempt},
                        ":link": {"N": str(link)},
                        ":ids": {"L": [{"S": i} for i in ids]},
                        ":last_sort": {"S": last_sort},
                        ":ispb": {"S": ispb},
                        ":open": {"S": STATE_OPEN},
                        ":now": {"N": repr(self._clock())},
                    },
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            }
        )
        reasons = self._transaction("ClaimMessages", items)
        capacity.record_statements("ClaimMessages", len(ids), 0 if reasons is None else len(ids))
        if reasons is None:
            return ClaimOutcome(applied=True)
        if len(reasons) != len(items):
            raise StoreUnavailable("ClaimMessages", "TransactionCanceledException")
        *message_reasons, stream_reason = reasons
        lost = frozenset(
            end_to_end_id
            for end_to_end_id, reason in zip(ids, message_reasons, strict=True)
            if reason.get("Code") in ("ConditionalCheckFailed", "TransactionConflict")
        )
        if stream_reason.get("Code") == "ConditionalCheckFailed":
            return ClaimOutcome(
                applied=False, lost=lost, rejected=True, stream=stream_reason.get("Item")
            )
        if stream_reason.get("Code") == "TransactionConflict" or not lost:
            # The stream item is busy, because a DELETE or an expiry is ending it, or the
            # store gave an unexpected reason. Either way the caller can try again later.
            codes = ",".join(r.get("Code", "None") for r in reasons)
            raise StoreUnavailable("ClaimMessages", codes)
        return ClaimOutcome(applied=False, lost=lost)

    def release(self, ispb: str, end_to_end_ids: Sequence[str], claim: str) -> int:
        """Return claimed messages to pending; return how many this call moved.

        A message moves only while its `claim` is still this attempt token, so releasing
        twice, or releasing a message that another stream has since claimed, changes
        nothing. The message returns to the queue position it had before.
        """
        statements = [
            {
                "Statement": (
                    f'UPDATE "{self._table}" SET queue_key = ? '
                    "REMOVE claim REMOVE expires_at WHERE pk = ? AND claim = ?"
                ),
                "Parameters": [
                    {"S": pending_queue(ispb)},
                    {"S": message_key(end_to_end_id)},
                    {"S": claim},
                ],
            }
            for end_to_end_id in end_to_end_ids
        ]
        if not statements:
            return 0
        results = self._batch_statements("ReleaseMessages", statements)
        failed = [r["Error"]["Code"] for r in results if "Error" in r]
        unavailable = [c for c in failed if c in STATEMENT_UNAVAILABLE_CODES]
        if unavailable:
            raise StoreUnavailable("ReleaseMessages", unavailable[0])
        return len(results) - len(failed)

    def message_bodies(self, end_to_end_ids: Sequence[str]) -> dict[str, str]:
        """Read message bodies by endToEndId with strongly consistent reads."""
        bodies: dict[str, str] = {}
        for start in range(0, len(end_to_end_ids), BATCH_GET_LIMIT):
            keys = [{"pk": {"S": message_key(i)}} for i in end_to_end_ids[start : start + 100]]
            for item in self._batch_get(keys, "pk, body"):
                bodies[item["pk"]["S"].removeprefix("MSG#")] = item["body"]["S"]
        return bodies

    def _batch_get(self, keys: list[Item], projection: str | None) -> Iterable[Item]:
        table_request: Item = {"Keys": keys, "ConsistentRead": True}
        if projection is not None:
            table_request["ProjectionExpression"] = projection
        request: Item = {self._table: table_request}
        items: list[Item] = []
        while request:
            response = self._request("BatchGetItem", "batch_get_item", RequestItems=request)
            items.extend(response.get("Responses", {}).get(self._table, []))
            request = response.get("UnprocessedKeys") or {}
        return items

    # Streams

    def open_stream(
        self, ispb: str, stream_id: str, limit: int, lease_until: float, slot: int
    ) -> bool:
        """Open a stream if the ISPB has fewer than `limit`; False when it is full.

        The counter increment and the new stream item commit together or not at all, so a
        rejected or failed start never takes a slot.
        """
        stream_item = {
            "pk": {"S": stream_key(stream_id)},
            "ispb": {"S": ispb},
            "state": {"S": STATE_OPEN},
            "link": {"N": "1"},
            "acked": {"N": "0"},
            "lease_until": {"N": repr(lease_until)},
            "slot": {"N": str(slot)},
            "opened_at": {"N": repr(self._clock())},
            "open_shard": {"S": open_shard(ispb)},
            "open_sort": {"S": f"{ispb}#{stream_id}"},
        }
        items = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {"pk": {"S": counter_key(ispb)}},
                    "UpdateExpression": "ADD open_streams :one",
                    "ConditionExpression": (
                        "attribute_not_exists(open_streams) OR open_streams < :limit"
                    ),
                    "ExpressionAttributeValues": {":one": {"N": "1"}, ":limit": {"N": str(limit)}},
                }
            },
            {
                "Put": {
                    "TableName": self._table,
                    "Item": stream_item,
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        ]
        # The stream id is fresh and random, so only the counter's condition can fail.
        return self._transact("OpenStream", items).applied

    def _transact(self, operation: str, items: list[Item]) -> Outcome:
        """Run a transaction; a failed condition returns the first item as it was.

        A conflict with another transaction is tried again, a few times, before it counts
        as unavailable.
        """
        for _ in range(3):
            reasons = self._transaction(operation, items)
            if reasons is None:
                return Outcome(applied=True, item=None)
            codes = [r.get("Code", "None") for r in reasons]
            if "ConditionalCheckFailed" in codes:
                return Outcome(applied=False, item=reasons[0].get("Item"))
            if "TransactionConflict" not in codes:
                raise StoreUnavailable(operation, ",".join(codes))
        raise StoreUnavailable(operation, "TransactionConflict")

    def _transaction(self, operation: str, items: list[Item]) -> list[Item] | None:
        """Run one transaction; return None if it applied, else each item's cancellation reason.

        botocore does not retry cancelled transactions. Its own retries of a throttled or
        timed-out call reuse the ``ClientRequestToken`` it generates per call, so DynamoDB
        applies the call once.
        """
        try:
            with self._call(operation):
                response = self._client.transact_write_items(
                    TransactItems=items, ReturnConsumedCapacity="TOTAL"
                )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            error: dict[str, Any] = dict(exc.response)
            capacity.record(operation, error)
            reasons: list[Item] = error.get("CancellationReasons", [])
            return reasons
        capacity.record(operation, response)
        return None

    def begin_read(self, ispb: str, stream_id: str, link: int, lease_until: float) -> Outcome:
        """Start a read on `link`: confirm the reads before it and renew the lease.

        Applies only to an open, unexpired stream of `ispb` whose newest link is `link`.
        Either way the outcome carries the item as it was before.
        """
        return self._conditional(
            "BeginRead",
            "update_item",
            TableName=self._table,
            Key={"pk": {"S": stream_key(stream_id)}},
            UpdateExpression="SET acked = :acked, lease_until = :lease",
            ConditionExpression=(
                "ispb = :ispb AND #state = :open AND link = :link AND lease_until > :now"
            ),
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":acked": {"N": str(link - 1)},
                ":lease": {"N": repr(lease_until)},
                ":link": {"N": str(link)},
                ":ispb": {"S": ispb},
                ":open": {"S": STATE_OPEN},
                ":now": {"N": repr(self._clock())},
            },
            ReturnValues="ALL_OLD",
        )

    def renew_lease(self, stream_id: str, link: int, acked: int, lease_until: float) -> Outcome:
        """Extend the lease of an open, unexpired stream at link `link` and confirmation `acked`.

        The confirmation condition keeps a repeated read from returning messages that a read
        on the newer link confirmed meanwhile.
        """
        return self._conditional(
            "RenewLease",
            "update_item",
            TableName=self._table,
            Key={"pk": {"S": stream_key(stream_id)}},
            UpdateExpression="SET lease_until = :lease",
            ConditionExpression=(
                "link = :link AND acked = :acked AND #state = :open AND lease_until > :now"
            ),
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":lease": {"N": repr(lease_until)},
                ":link": {"N": str(link)},
                ":acked": {"N": str(acked)},
                ":open": {"S": STATE_OPEN},
                ":now": {"N": repr(self._clock())},
            },
        )

    def get_stream_item(self, stream_id: str) -> Item | None:
        """Read a stream item with a strongly consistent read."""
        response = self._request(
            "GetItem",
            "get_item",
            TableName=self._table,
            Key={"pk": {"S": stream_key(stream_id)}},
            ConsistentRead=True,
        )
        item: Item | None = response.get("Item")
        return item

    def get_streams(self, stream_ids: Sequence[str]) -> list[StreamRecord]:
        records: list[StreamRecord] = []
        for start in range(0, len(stream_ids), BATCH_GET_LIMIT):
            keys = [{"pk": {"S": stream_key(i)}} for i in stream_ids[start : start + 100]]
            records.extend(StreamRecord.from_item(item) for item in self._batch_get(keys, None))
        return records

    def end_stream(
        self,
        stream: StreamRecord,
        state: str,
        condition: str,
        values: Item,
        acked: int | None = None,
    ) -> Outcome:
        """Move an open stream to `state` and free its slot, atomically and only once.

        The stream's state condition makes the counter decrement happen at most once per
        stream, however many requests or sweepers race to end it.
        """
        update = "SET #state = :state"
        values = {":state": {"S": state}, ":open": {"S": STATE_OPEN}, **values}
        if acked is not None:
            update += ", acked = :acked"
            values[":acked"] = {"N": str(acked)}
        items = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {"pk": {"S": stream_key(stream.stream_id)}},
                    "UpdateExpression": update,
                    "ConditionExpression": f"#state = :open AND {condition}",
                    "ExpressionAttributeNames": {"#state": "state"},
                    "ExpressionAttributeValues": values,
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {"pk": {"S": counter_key(stream.ispb)}},
                    "UpdateExpression": "ADD open_streams :minus_one",
                    "ExpressionAttributeValues": {":minus_one": {"N": "-1"}},
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {"pk": {"S": slots_key(stream.ispb)}},
                    "UpdateExpression": "ADD claimants :minus_one",
                    "ExpressionAttributeValues": {":minus_one": {"N": "-1"}},
                }
            },
        ]
        return self._transact("EndStream", items)

    def forget_stream(self, stream_id: str) -> None:
        """Drop an ended stream from the open-streams index and let TTL delete it later."""
        self._request(
            "ForgetStream",
            "update_item",
            TableName=self._table,
            Key={"pk": {"S": stream_key(stream_id)}},
            UpdateExpression="REMOVE open_shard, open_sort SET expires_at = :expires",
            ConditionExpression="#state <> :open",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":open": {"S": STATE_OPEN},
                ":expires": {"N": str(int(self._clock()) + self._retention_seconds)},
            },
        )

    def indexed_stream_ids(self, shard: str, ispb: str | None = None) -> list[str]:
        """List the streams in the open-streams index, for one shard or one ISPB."""
        condition = "open_shard = :shard"
        values: Item = {":shard": {"S": shard}}
        if ispb is not None:
            condition += " AND begins_with(open_sort, :prefix)"
            values[":prefix"] = {"S": f"{ispb}#"}
        kwargs: Item = {
            "TableName": self._table,
            "IndexName": OPEN_STREAMS_INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
        ids: list[str] = []
        while True:
            response = self._request("Query", "query", **kwargs)
            ids.extend(i["open_sort"]["S"].split("#", 1)[1] for i in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if last is None:
                return ids
            kwargs["ExclusiveStartKey"] = last

    def add_claimants(self, ispb: str, delta: int) -> int:
        """Add `delta` to the ISPB's claim-spreading count and return the new count."""
        response = self._request(
            "CountClaimants",
            "update_item",
            TableName=self._table,
            Key={"pk": {"S": slots_key(ispb)}},
            UpdateExpression="ADD claimants :delta",
            ExpressionAttributeValues={":delta": {"N": str(delta)}},
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["claimants"]["N"])

    def open_stream_count(self, ispb: str) -> int:
        response = self._request(
            "GetItem",
            "get_item",
            TableName=self._table,
            Key={"pk": {"S": counter_key(ispb)}},
            ConsistentRead=True,
        )
        return int(response.get("Item", {}).get("open_streams", {}).get("N", "0"))

    # API keys

    def put_api_key(self, key_hash: str, ispb: str) -> bool:
        """Store an API key hash for `ispb`; return False if that hash was already stored."""
        outcome = self._conditional(
            "PutApiKey",
            "put_item",
            TableName=self._table,
            Item={
                "pk": {"S": api_key_key(key_hash)},
                "ispb": {"S": ispb},
                "created_at": {"N": str(int(self._clock()))},
            },
            ConditionExpression="attribute_not_exists(pk)",
        )
        return outcome.applied

    def ispb_for_api_key(self, key_hash: str) -> str | None:
        """Return the ISPB an API key hash grants access to, or None for an unknown hash."""
        response = self._request(
            "GetItem",
            "get_item",
            TableName=self._table,
            Key={"pk": {"S": api_key_key(key_hash)}},
            ProjectionExpression="ispb",
        )
        ispb: str | None = response.get("Item", {}).get("ispb", {}).get("S")
        return ispb


def _queue_entry(item: Item) -> QueueEntry:
    return QueueEntry(
        end_to_end_id=item["pk"]["S"].removeprefix("MSG#"),
        body=item.get("body", {}).get("S", ""),
        queue_sort=item["queue_sort"]["S"],
    )

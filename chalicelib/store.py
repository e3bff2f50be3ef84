"""All DynamoDB access: one table holding messages, streams and per-ISPB stream counters.

Items, by partition key:

- ``MSG#<endToEndId>``: one message. While pending, its ``queue_key`` is ``P#<ispb>`` and its
  ``queue_sort`` orders it by arrival, so the ``queue`` index lists an ISPB's pending messages
  oldest first. A claim moves it, in one conditional write, to ``queue_key = C#<stream>`` with
  the read number in front of ``queue_sort``, so the same index lists what a stream holds.
- ``STREAM#<id>``: one stream: its newest link number, the last read it confirmed, its lease,
  and the messages of its newest read. Open streams also appear in the ``open-streams`` index.
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


def stream_queue(stream_id: str) -> str:
    return f"C#{stream_id}"


def claimed_sort(read: int, pending_sort: str) -> str:
    return f"{read:010d}#{pending_sort}"


def pending_sort_of(claimed: str) -> str:
    return claimed.split("#", 1)[1]


def read_of(claimed: str) -> int:
    return int(claimed.split("#", 1)[0])


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
    claim: str | None = None


@dataclass(frozen=True)
class StreamRecord:
    stream_id: str
    ispb: str
    state: str
    link: int
    acked: int
    lease_until: float
    attempt: str | None
    attempt_link: int
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
            attempt=item.get("attempt", {}).get("S"),
            attempt_link=int(item.get("attempt_link", {}).get("N", "0")),
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
        return self._query_queue(pending_queue(ispb), None, limit, with_body=True)

    def stream_messages(self, stream_id: str, after_read: int) -> list[QueueEntry]:
        """Return the messages claimed by a stream in reads after `after_read`."""
        # "~" sorts after every digit and "#", so this skips all reads <= after_read.
        return self._query_queue(
            stream_queue(stream_id), f"{after_read:010d}~", None, with_body=False
        )

    def _query_queue(
        self, queue_key: str, sort_after: str | None, limit: int | None, *, with_body: bool
    ) -> list[QueueEntry]:
        condition = "queue_key = :q"
        values: Item = {":q": {"S": queue_key}}
        if sort_after is not None:
            condition += " AND queue_sort > :s"
            values[":s"] = {"S": sort_after}
        kwargs: Item = {
            "TableName": self._table,
            "IndexName": QUEUE_INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ProjectionExpression": "pk, queue_sort, claim" + (", body" if with_body else ""),
        }
        entries: list[QueueEntry] = []
        while True:
            if limit is not None:
                kwargs["Limit"] = limit - len(entries)
            response = self._request("Query", "query", **kwargs)
            entries.extend(_queue_entry(item) for item in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if last is None or (limit is not None and len(entries) >= limit):
                return entries
            kwargs["ExclusiveStartKey"] = last

    def claim(
        self,
        ispb: str,
        entries: Sequence[QueueEntry],
        stream_id: str,
        read: int,
        attempt: str,
    ) -> list[QueueEntry]:
        """Claim pending messages for one read of a stream; return those this call won.

        Each statement only applies while the message is still pending, so of two readers
        racing for a message exactly one wins; the loser skips it and never retries it.
        A statement whose condition fails because this same attempt already holds the
        message (botocore repeated a call whose reply was lost) counts as won, so that no
        claim is left behind unrecorded.
        """
        expires_at = int(self._clock()) + self._retention_seconds
        statements = [
            {
                "Statement": (
                    f'UPDATE "{self._table}" SET queue_key = ? SET queue_sort = ? '
                    "SET claim = ? SET expires_at = ? WHERE pk = ? AND queue_key = ?"
                ),
                "Parameters": [
                    {"S": stream_queue(stream_id)},
                    {"S": claimed_sort(read, entry.queue_sort)},
                    {"S": attempt},
                    {"N": str(expires_at)},
                    {"S": message_key(entry.end_to_end_id)},
                    {"S": pending_queue(ispb)},
                ],
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
            for entry in entries
        ]
        results = self._batch_statements("ClaimMessages", statements)
        return [
            entry
            for entry, result in zip(entries, results, strict=True)
            if _claimed_by(result, stream_id, attempt)
        ]

    def release(self, ispb: str, stream_id: str, entries: Sequence[QueueEntry]) -> int:
        """Return claimed messages to pending; return how many this call moved.

        A message moves only while the same claim still owns it, so releasing twice, or
        releasing a message that another stream has since claimed, changes nothing.
        """
        statements = [
            {
                "Statement": (
                    f'UPDATE "{self._table}" SET queue_key = ? SET queue_sort = ? '
                    "REMOVE claim REMOVE expires_at WHERE pk = ? AND queue_key = ? AND claim = ?"
                ),
                "Parameters": [
                    {"S": pending_queue(ispb)},
                    {"S": pending_sort_of(entry.queue_sort)},
                    {"S": message_key(entry.end_to_end_id)},
                    {"S": stream_queue(stream_id)},
                    {"S": entry.claim or ""},
                ],
            }
            for entry in entries
            if entry.claim
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
        self, ispb: str, stream_id: str, limit: int, attempt: str, lease_until: float, slot: int
    ) -> bool:
        """Open a stream if the ISPB has fewer than `limit`; False when it is full.

        The counter increment and the new stream item commit together or not at all, so a
        refused or failed start never takes a slot.
        """
        stream_item = {
            "pk": {"S": stream_key(stream_id)},
            "ispb": {"S": ispb},
            "state": {"S": STATE_OPEN},
            "link": {"N": "1"},
            "acked": {"N": "0"},
            "lease_until": {"N": repr(lease_until)},
            "attempt": {"S": attempt},
            "attempt_link": {"N": "1"},
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

        botocore does not retry cancelled transactions, so a conflict with another
        transaction is tried again here, a few times, before it counts as unavailable.
        botocore's own retries of a throttled or timed-out call reuse the
        ``ClientRequestToken`` it generates per call, so DynamoDB applies the call once.
        """
        for _ in range(3):
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
                codes = [r.get("Code", "None") for r in reasons]
                if "ConditionalCheckFailed" in codes:
                    return Outcome(applied=False, item=reasons[0].get("Item"))
                if "TransactionConflict" in codes:
                    continue
                raise StoreUnavailable(operation, ",".join(codes)) from exc
            capacity.record(operation, response)
            return Outcome(applied=True, item=None)
        raise StoreUnavailable(operation, "TransactionConflict")

    def begin_read(
        self, ispb: str, stream_id: str, link: int, attempt: str, lease_until: float
    ) -> Outcome:
        """Start a read on `link`: confirm earlier reads, renew the lease, record the attempt.

        Applies only to an open, unexpired stream of `ispb` whose newest link is `link`.
        Either way the outcome carries the item as it was before.
        """
        return self._conditional(
            "BeginRead",
            "update_item",
            TableName=self._table,
            Key={"pk": {"S": stream_key(stream_id)}},
            UpdateExpression=(
                "SET acked = :acked, lease_until = :lease, attempt = :attempt, attempt_link = :link"
            ),
            ConditionExpression=(
                "ispb = :ispb AND #state = :open AND link = :link AND lease_until > :now"
            ),
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":acked": {"N": str(link - 1)},
                ":lease": {"N": repr(lease_until)},
                ":attempt": {"S": attempt},
                ":link": {"N": str(link)},
                ":ispb": {"S": ispb},
                ":open": {"S": STATE_OPEN},
                ":now": {"N": repr(self._clock())},
            },
            ReturnValues="ALL_OLD",
        )

    def commit_read(
        self,
        stream_id: str,
        link: int,
        attempt: str,
        end_to_end_ids: Sequence[str],
        last_sort: str = "",
    ) -> Outcome:
        """Record that read `link` delivered these messages and advance to the next link.

        `last_sort` is the pending queue position of the newest message delivered.
        """
        return self._conditional(
            "CommitRead",
            "update_item",
            TableName=self._table,
            Key={"pk": {"S": stream_key(stream_id)}},
            UpdateExpression=(
                "SET link = :next, inflight_read = :link, inflight_ids = :ids, "
                "committed = :attempt, last_sort = :last_sort"
            ),
            ConditionExpression=(
                "attempt = :attempt AND link = :link AND #state = :open AND lease_until > :now"
            ),
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":next": {"N": str(link + 1)},
                ":link": {"N": str(link)},
                ":ids": {"L": [{"S": i} for i in end_to_end_ids]},
                ":attempt": {"S": attempt},
                ":last_sort": {"S": last_sort},
                ":open": {"S": STATE_OPEN},
                ":now": {"N": repr(self._clock())},
            },
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


def _claimed_by(result: Item, stream_id: str, attempt: str) -> bool:
    """Tell whether a claim statement left its message held by `attempt` of `stream_id`."""
    error = result.get("Error")
    if error is None:
        return True
    if error.get("Code") != "ConditionalCheckFailed":
        return False
    item = error.get("Item", {})
    return bool(
        item.get("queue_key", {}).get("S") == stream_queue(stream_id)
        and item.get("claim", {}).get("S") == attempt
    )


def _queue_entry(item: Item) -> QueueEntry:
    return QueueEntry(
        end_to_end_id=item["pk"]["S"].removeprefix("MSG#"),
        body=item.get("body", {}).get("S", ""),
        queue_sort=item["queue_sort"]["S"],
        claim=item.get("claim", {}).get("S"),
    )

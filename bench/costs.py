"""DynamoDB capacity per delivered message and per idle stream, from the server's metric lines.

The server writes one JSON line per request (chalicelib/observability.py) with the read and
write capacity units that DynamoDB returned in `ConsumedCapacity`. Against DynamoDB Local
three parts are missing, so this module adds them, computed from DynamoDB's documented
pricing rules and labelled as computed:

- PartiQL `BatchExecuteStatement` responses carry no `ConsumedCapacity` there. Each
  statement is priced as the single-item write it is: `ceil(item size / 1 KB)` write units
  when it applies, and the same when its condition fails, since DynamoDB charges a failed
  conditional write by the item's size, with a minimum of one unit.
- DynamoDB Local reports 0 read units for a `Query` that returns nothing; DynamoDB
  charges at least 0.5 units for it (eventually consistent), so each request's reads are
  raised to that minimum per `Query` and 1 unit per strongly consistent `GetItem`.
- DynamoDB Local reports only the table's units, never a global secondary index's. On AWS
  an update that changes an index key costs a delete plus a put in the index, one that adds
  or removes the item from a sparse index costs one index write, and `TOTAL` includes them.
- DynamoDB Local reports the same few units for every `TransactWriteItems` call, whatever
  it writes. The claim transaction is priced instead, and its reported units are left out:
  two write units per KB of each item it writes (the messages and the stream item), the
  same when it is cancelled, plus the index writes of the messages it takes.
"""

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DELIVERY_OPERATIONS = frozenset({"StartStream", "ReadStream", "CloseStream"})
CREATE_OPERATIONS = frozenset({"CreateMessages"})

# Bytes a message item holds besides its body when claimed, its largest state: attribute
# names plus values of pk, ispb, queue_key, queue_sort, created_at, claim and expires_at
# (see chalicelib/store.py). DynamoDB sizes an item as the UTF-8 bytes of names and values.
MESSAGE_OVERHEAD_BYTES = 224
# The `queue` index entry of a message: its keys, the table key and the projected body.
QUEUE_ENTRY_OVERHEAD_BYTES = 178
WRITE_UNIT_BYTES = 1024

# Index writes per successful statement or call, by store operation, from the index changes
# in chalicelib/store.py: an insert or a release puts the message into `queue`, a claim
# removes it, opening a stream puts it into `open-streams` and forgetting it removes it.
QUEUE_INDEX_WRITES = {"InsertMessages": 1, "ClaimMessages": 1, "ReleaseMessages": 1}
# Transactional operations: each item written costs twice a plain write. Besides its
# messages, each claim transaction writes the stream item, which stays under 1 KB.
TRANSACTIONS = frozenset({"ClaimMessages"})
TRANSACTION_FACTOR = 2
STREAM_ITEM_UNITS = 1
OPEN_STREAMS_INDEX_WRITES = {"OpenStream": 1, "ForgetStream": 1}
# The least a read is charged even when it returns nothing: an eventually consistent Query
# 0.5 units, a strongly consistent GetItem 1 unit. DynamoDB Local reports 0 for an empty
# Query, so each request's reads are raised to at least these minimums.
MINIMUM_READ_UNITS = {"Query": 0.5, "GetItem": 1.0}


@dataclass(frozen=True)
class PricingModel:
    """Write units of one message item and one of its `queue` index entries."""

    body_bytes: float

    @property
    def item_units(self) -> int:
        return math.ceil((self.body_bytes + MESSAGE_OVERHEAD_BYTES) / WRITE_UNIT_BYTES)

    @property
    def index_entry_units(self) -> int:
        return math.ceil((self.body_bytes + QUEUE_ENTRY_OVERHEAD_BYTES) / WRITE_UNIT_BYTES)

    def index_units(self, operation: str, applied: int) -> int:
        """Write units that `applied` successful statements of `operation` cause in `queue`."""
        return applied * QUEUE_INDEX_WRITES.get(operation, 0) * self.index_entry_units


@dataclass
class CostTotals:
    """Capacity summed over the requests of one group."""

    requests: int = 0
    messages: int = 0
    store_calls: int = 0
    unreported_calls: int = 0
    reported_read: float = 0.0
    reported_write: float = 0.0
    computed_statement_write: float = 0.0
    computed_index_write: float = 0.0
    computed_read_minimum: float = 0.0
    duration_seconds: float = 0.0
    calls_by_operation: dict[str, int] = field(default_factory=dict)

    def add(self, line: dict[str, Any], model: PricingModel) -> None:
        self.requests += 1
        self.messages += int(line.get("MessagesDelivered", 0))
        self.store_calls += int(line.get("StoreCalls", 0))
        self.unreported_calls += int(line.get("unreportedStoreCalls", 0))
        reported_read = float(line.get("ReadCapacityUnits", 0.0))
        self.reported_read += reported_read
        self.reported_write += float(line.get("WriteCapacityUnits", 0.0))
        self.duration_seconds += float(line.get("Duration", 0.0)) / 1000
        calls: dict[str, int] = line.get("storeCallsByOperation", {})
        minimum = sum(MINIMUM_READ_UNITS.get(op, 0.0) * count for op, count in calls.items())
        self.computed_read_minimum += max(0.0, minimum - reported_read)
        reported_units: dict[str, float] = line.get("unitsByOperation", {})
        for operation, count in calls.items():
            self.calls_by_operation[operation] = self.calls_by_operation.get(operation, 0) + count
            self.computed_index_write += OPEN_STREAMS_INDEX_WRITES.get(operation, 0) * count
            if operation in TRANSACTIONS:
                self.reported_write -= reported_units.get(operation, 0.0)
                self.computed_statement_write += TRANSACTION_FACTOR * STREAM_ITEM_UNITS * count
        statements: dict[str, dict[str, int]] = line.get("statementsByOperation", {})
        for operation, counts in statements.items():
            sent, failed = counts["sent"], counts["failed"]
            factor = TRANSACTION_FACTOR if operation in TRANSACTIONS else 1
            self.computed_statement_write += factor * sent * model.item_units
            self.computed_index_write += model.index_units(operation, sent - failed)

    @property
    def read_units(self) -> float:
        return self.reported_read + self.computed_read_minimum

    @property
    def write_units(self) -> float:
        return self.reported_write + self.computed_statement_write + self.computed_index_write

    def per(self, count: float) -> dict[str, float]:
        """Read, write and total units divided by `count` (messages, or stream-minutes)."""
        if count <= 0:
            return {"read": math.nan, "write": math.nan, "total": math.nan}
        read = self.read_units / count
        write = self.write_units / count
        return {"read": round(read, 3), "write": round(write, 3), "total": round(read + write, 3)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "messages": self.messages,
            "store_calls": self.store_calls,
            "unreported_store_calls": self.unreported_calls,
            "reported_read_units": round(self.reported_read, 2),
            "reported_write_units": round(self.reported_write, 2),
            "computed_statement_write_units": round(self.computed_statement_write, 2),
            "computed_index_write_units": round(self.computed_index_write, 2),
            "computed_read_minimum_units": round(self.computed_read_minimum, 2),
            "read_units": round(self.read_units, 2),
            "write_units": round(self.write_units, 2),
            "calls_by_operation": dict(sorted(self.calls_by_operation.items())),
        }


def read_metric_lines(paths: Iterable[Path]) -> Iterator[dict[str, Any]]:
    """Yield the per-request metric lines of server logs, skipping every other line."""
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as log:
            for text in log:
                if not text.startswith('{"_aws"'):
                    continue
                try:
                    yield json.loads(text)
                except json.JSONDecodeError:
                    continue


def scenario_costs(
    lines: list[dict[str, Any]], ispbs: Iterable[str], model: PricingModel
) -> dict[str, Any]:
    """Sum the capacity of one scenario's requests, picked by the scenario's ISPBs."""
    wanted = set(ispbs)
    delivery, creation, idle = CostTotals(), CostTotals(), CostTotals()
    for line in lines:
        if line.get("ispb") not in wanted:
            continue
        operation = line.get("Operation")
        if operation in CREATE_OPERATIONS:
            creation.add(line, model)
        elif operation in DELIVERY_OPERATIONS:
            delivery.add(line, model)
            # A start's first poll also pays for opening the stream, so only continued
            # reads measure what waiting costs.
            if operation == "ReadStream" and line.get("status") == 204:
                idle.add(line, model)
    idle_minutes = idle.duration_seconds / 60
    return {
        "delivery": delivery.to_dict(),
        "creation": creation.to_dict(),
        "idle_polls": idle.to_dict(),
        "per_delivered_message": delivery.per(delivery.messages),
        "per_created_message": creation.per(_created(creation, lines, wanted)),
        "per_idle_stream_minute": idle.per(idle_minutes),
        "store_calls_per_reply": _calls_per_reply(lines, wanted),
        "server_empty_poll_seconds": _empty_poll_durations(lines, wanted),
    }


def _empty_poll_durations(lines: list[dict[str, Any]], wanted: set[str]) -> list[float]:
    """Durations of the reads that ended empty, as the server measured them, sorted."""
    return sorted(
        float(line.get("Duration", 0.0)) / 1000
        for line in lines
        if line.get("ispb") in wanted
        and line.get("Operation") in DELIVERY_OPERATIONS
        and line.get("status") == 204
    )


def _created(creation: CostTotals, lines: list[dict[str, Any]], wanted: set[str]) -> int:
    sent = 0
    for line in lines:
        if line.get("ispb") in wanted and line.get("Operation") in CREATE_OPERATIONS:
            counts = line.get("statementsByOperation", {}).get("InsertMessages", {})
            sent += counts.get("sent", 0) - counts.get("failed", 0)
    return sent


def _calls_per_reply(lines: list[dict[str, Any]], wanted: set[str]) -> float:
    """Mean store calls of the reads that returned messages."""
    calls = [
        int(line.get("StoreCalls", 0))
        for line in lines
        if line.get("ispb") in wanted
        and line.get("Operation") in DELIVERY_OPERATIONS
        and line.get("status") == 200
        and int(line.get("MessagesDelivered", 0)) > 0
    ]
    return round(sum(calls) / len(calls), 2) if calls else math.nan

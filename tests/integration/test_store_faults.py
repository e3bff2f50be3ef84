"""Every store call of a stream's life fails once, in every way; nothing is lost or doubled.

A scripted PSP (start, read until a 204, DELETE) runs against StreamService on DynamoDB
Local. One run is made per store call of that script and per fault: throttling, a lost
reply, a call applied twice, and a process crash before or after the call. The PSP retries
what failed, as a real one would, and afterwards the messages are checked.
"""

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.errors import StoreUnavailable, StreamGone, StreamLimitReached
from chalicelib.messages import generate_messages
from chalicelib.polling import PendingSignal
from chalicelib.store import QUEUE_INDEX, STATE_OPEN, message_key, pending_queue, stream_key
from chalicelib.streams import ReadResult, StreamService
from tests.integration.inprocess import (
    CRASH_AFTER,
    FAULTS,
    REPEAT,
    THROTTLE,
    Harness,
    ProcessCrash,
    random_ispb,
)

MESSAGES = 4
# Failures one script run may see before the test gives up, so a bug cannot loop forever.
MAX_FAILURES = 20


@pytest.fixture(scope="module")
def harness(dynamodb_endpoint: str) -> Iterator[Harness]:
    harness = Harness.create(dynamodb_endpoint)
    yield harness
    harness.faults.disarm()


@dataclass
class Collector:
    """A PSP that repeats a failed request, starts over after a 410, and closes at the end.

    It records which streams each message reached and which messages it confirmed, and
    checks each delivery as it arrives.
    """

    harness: Harness
    ispb: str
    delivered_to: dict[str, set[str]] = field(default_factory=dict)
    confirmed: set[str] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)
    # Messages of the reply that produced each link: following the link confirms them.
    _batches: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def collect(self) -> None:
        """Start a stream, read until a 204, then close it."""
        result = self._retry(self._start)
        while result.end_to_end_ids:
            result = self._follow(result)
        self._retry(lambda: self._close(result.link_id))

    def _start(self) -> ReadResult:
        try:
            return self._record(self.harness.start(self.ispb))
        except StreamLimitReached:
            # Streams whose start reply was lost still hold slots until their lease ends.
            self.harness.clock.advance(self.harness.settings.lease_seconds)
            raise

    def _follow(self, result: ReadResult) -> ReadResult:
        try:
            return self._retry(lambda: self._read(result.link_id))
        except StreamGone:
            return self._retry(self._start)

    def _read(self, link_id: str) -> ReadResult:
        result = self.harness.read(self.ispb, link_id)
        self.confirmed.update(self._batches.get(link_id, ()))
        return self._record(result)

    def _close(self, link_id: str) -> None:
        self.harness.close(self.ispb, link_id)
        self.confirmed.update(self._batches.get(link_id, ()))

    def _record(self, result: ReadResult) -> ReadResult:
        for end_to_end_id in result.end_to_end_ids:
            assert end_to_end_id not in self.confirmed, f"{end_to_end_id} delivered after confirm"
            holders = self.delivered_to.setdefault(end_to_end_id, set())
            for other in holders - {result.stream_id}:
                state = self.harness.stream_state(other)
                assert state != STATE_OPEN, f"{end_to_end_id} held by open stream {other}"
            holders.add(result.stream_id)
        self._batches[result.link_id] = result.end_to_end_ids
        return result

    def _retry[T](self, request: Callable[[], T]) -> T:
        while True:
            try:
                return request()
            except (StoreUnavailable, ProcessCrash, StreamLimitReached) as exc:
                self.failures.append(type(exc).__name__)
                assert len(self.failures) <= MAX_FAILURES, self.failures


def run_script(harness: Harness, call_number: int | None, fault: str) -> Collector:
    """Collect a fresh ISPB's messages with call `call_number` failing, then check them."""
    ispb = random_ispb()
    created = harness.insert(ispb, MESSAGES)
    collector = Collector(harness, ispb)
    if call_number is not None:
        harness.faults.arm(call_number, fault)
    try:
        collector.collect()
    finally:
        harness.faults.disarm()

    # Streams abandoned by the failures expire; a second collection gets what they held.
    harness.clock.advance(harness.settings.lease_seconds)
    harness.service.reap_ispb(ispb)
    collector.collect()

    queues = harness.message_queues(created)
    assert sorted(queues) == sorted(created), "a message disappeared"
    assert pending_queue(ispb) not in queues.values()
    assert set(created) <= collector.confirmed
    assert harness.open_counter(ispb) == 0
    return collector


def count_store_calls(harness: Harness) -> int:
    """Count the store calls of one collection without failures."""
    ispb = random_ispb()
    harness.insert(ispb, MESSAGES)
    collector = Collector(harness, ispb)
    harness.faults.arm(0, THROTTLE)
    collector.collect()
    harness.faults.disarm()
    assert collector.failures == []
    return harness.faults.calls


def reap_failed(caplog: pytest.LogCaptureFixture) -> bool:
    return any(r.getMessage().startswith("reaping ISPB") for r in caplog.records)


@pytest.mark.parametrize("fault", FAULTS)
def test_every_store_call_fails_once(
    harness: Harness, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    calls = count_store_calls(harness)

    for call_number in range(1, calls + 1):
        caplog.clear()
        collector = run_script(harness, call_number, fault)
        assert harness.faults.fired, f"call {call_number} was not made"
        # botocore itself repeats calls, and an empty read whose reap fails still returns
        # its reply, so the PSP notices neither.
        expect_failure = fault != REPEAT and not reap_failed(caplog)
        assert bool(collector.failures) == expect_failure, collector.failures


def test_crash_after_claim_repeats_batch(harness: Harness) -> None:
    ispb = random_ispb()
    created = harness.insert(ispb, 3)
    first = harness.start(ispb, batch=1)
    harness.faults.arm(2, CRASH_AFTER)  # Query, then the claim transaction

    with pytest.raises(ProcessCrash):
        harness.read(ispb, first.link_id, batch=1)
    harness.faults.disarm()
    restarted = StreamService(
        harness.store,
        harness.settings,
        PendingSignal(),
        clock=harness.clock,
        monotonic=time.monotonic,
    )
    retried = restarted.read(ispb, first.link_id, 1, time.monotonic())

    assert retried.retried is True
    assert retried.end_to_end_ids == (created[1],)
    assert harness.message_queues([created[2]])[created[2]] == pending_queue(ispb)


def test_crash_while_waiting_keeps_confirmation(harness: Harness) -> None:
    ispb = random_ispb()
    created = harness.insert(ispb, 3)
    first = harness.start(ispb)
    queries = 0

    def crash_on_second_query(model: Any, params: Any, **kwargs: Any) -> None:
        nonlocal queries
        if model.name == "Query" and json.loads(params["body"])["IndexName"] == QUEUE_INDEX:
            queries += 1
            if queries == 2:
                raise ProcessCrash("crash while waiting")

    # The next read finds nothing pending and waits; the process dies during the wait.
    harness.client.meta.events.register("before-call.dynamodb", crash_on_second_query)
    try:
        with pytest.raises(ProcessCrash):
            harness.service.read(ispb, first.link_id, 3, time.monotonic() + 0.5)
    finally:
        harness.client.meta.events.unregister("before-call.dynamodb", crash_on_second_query)
    harness.clock.advance(1 + harness.settings.lease_seconds)
    harness.service.reap_ispb(ispb)

    # Following the link confirmed the batch, so the expiry does not return it.
    queues = harness.message_queues(created)
    assert pending_queue(ispb) not in queues.values()
    assert harness.store.pending_messages(ispb, 10) == []


def test_insert_repeated_after_lost_reply_counts_once(harness: Harness) -> None:
    ispb = random_ispb()
    messages = generate_messages(ispb, 5, datetime.now(UTC))
    harness.faults.arm(1, REPEAT)

    inserted = harness.store.insert_messages(messages)
    harness.faults.disarm()
    again = harness.store.insert_messages(messages)

    assert harness.faults.fired
    assert inserted == [m.end_to_end_id for m in messages]
    assert again == []


def test_retention_sets_ttl_of_claims_and_ended_streams(dynamodb_endpoint: str) -> None:
    harness = Harness.create(dynamodb_endpoint, retention_days=2.0)
    retention = 2 * 86400
    ispb = random_ispb()
    created = harness.insert(ispb, 2)
    first = harness.start(ispb, batch=1)
    closed_at = int(harness.clock())
    harness.close(ispb, first.link_id)

    def expires_at(key: str) -> int | None:
        item = harness.client.get_item(
            TableName=harness.table_name, Key={"pk": {"S": key}}, ConsistentRead=True
        )["Item"]
        value = item.get("expires_at", {}).get("N")
        return None if value is None else int(value)

    assert expires_at(message_key(created[0])) == closed_at + retention
    assert expires_at(message_key(created[1])) is None  # pending messages never expire
    assert expires_at(stream_key(first.stream_id)) == closed_at + retention

"""StreamService against a reference model, driven by hypothesis, on DynamoDB Local.

Each example is a random sequence of inserts, starts, reads, repeated reads, DELETEs,
clock advances and reaps on one ISPB. A start or read that finds nothing pending also ends
the ISPB's expired streams, whose messages it may then receive. After every step the table
is compared with the model: no confirmed message is pending, each unconfirmed delivery is
held by exactly its stream, the counter equals the open streams, and no message disappears.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from chalicelib.errors import StreamGone, StreamLimitReached
from chalicelib.store import StreamRecord, pending_queue
from chalicelib.streams import ReadResult
from tests.integration.inprocess import Harness, random_ispb

STREAM_LIMIT = 3
LEASE_SECONDS = 3.0


@pytest.fixture(scope="module")
def harness(dynamodb_endpoint: str) -> Iterator[Harness]:
    yield Harness.create(dynamodb_endpoint, stream_limit=STREAM_LIMIT, lease_seconds=LEASE_SECONDS)


@dataclass
class ModelStream:
    """The expected state of one stream."""

    stream_id: str
    link_id: str
    lease_until: float
    open: bool = True
    closed: bool = False
    # Delivered by the read that produced `link_id` and not yet confirmed.
    unconfirmed: tuple[str, ...] = ()
    # The link that produced `link_id`, and the reply to it, while repeating it is allowed.
    previous: tuple[str, ReadResult] | None = None
    older_links: list[str] = field(default_factory=list)


class StreamMachine(RuleBasedStateMachine):
    harness: Harness

    def __init__(self) -> None:
        super().__init__()
        self.ispb = random_ispb()
        self.inserted: list[str] = []
        self.confirmed: set[str] = set()
        self.streams: list[ModelStream] = []

    # Model helpers

    @property
    def now(self) -> float:
        return self.harness.clock()

    def open_streams(self) -> list[ModelStream]:
        return [s for s in self.streams if s.open]

    def held(self) -> set[str]:
        return {i for s in self.open_streams() for i in s.unconfirmed}

    def pending(self) -> set[str]:
        return set(self.inserted) - self.confirmed - self.held()

    def lease_passed(self, stream: ModelStream) -> bool:
        return stream.lease_until <= self.now

    def end_expired(self, stream: ModelStream) -> None:
        stream.open = False
        stream.unconfirmed = ()

    def reap_if_idle(self, reader: ModelStream | None) -> None:
        """A read that finds nothing pending first ends the ISPB's expired streams."""
        if self.pending():
            return
        for stream in self.open_streams():
            if stream is not reader and self.lease_passed(stream):
                self.end_expired(stream)

    def deliver(self, stream: ModelStream, result: ReadResult) -> None:
        """Check a reply against the model and advance the stream."""
        assert result.stream_id == stream.stream_id
        available = self.pending()
        assert set(result.end_to_end_ids) <= available, "delivered a message not pending"
        assert bool(result.end_to_end_ids) == bool(available), "204 while messages pending"
        if not result.end_to_end_ids:
            assert result.link_id == stream.link_id, "a 204 must repeat the link"
            stream.previous = None
            return
        stream.older_links.append(stream.link_id)
        stream.previous = (stream.link_id, result)
        stream.link_id = result.link_id
        stream.unconfirmed = result.end_to_end_ids

    def pick(self, index: int, streams: list[ModelStream]) -> ModelStream:
        return streams[index % len(streams)]

    # Rules

    @rule(count=st.integers(1, 4))
    def insert(self, count: int) -> None:
        self.inserted += self.harness.insert(self.ispb, count)

    @rule(batch=st.sampled_from([1, 3]))
    def start(self, batch: int) -> None:
        full = len(self.open_streams()) >= STREAM_LIMIT
        expired = [s for s in self.open_streams() if self.lease_passed(s)]
        if full and not expired:
            with pytest.raises(StreamLimitReached):
                self.harness.start(self.ispb, batch)
            return
        if full:
            for stream in expired:  # stream/start reaps the ISPB's expired streams
                self.end_expired(stream)
        self.reap_if_idle(None)
        result = self.harness.start(self.ispb, batch)
        stream = ModelStream(result.stream_id, result.link_id, self.now + LEASE_SECONDS)
        self.streams.append(stream)
        self.deliver(stream, result)
        # The reply to stream/start has no link of its own that a client could repeat.
        stream.previous = None
        stream.older_links = []

    @precondition(lambda self: self.streams)
    @rule(index=st.integers(0, 20), batch=st.sampled_from([1, 3]))
    def read(self, index: int, batch: int) -> None:
        stream = self.pick(index, self.streams)
        if not stream.open or self.lease_passed(stream):
            with pytest.raises(StreamGone):
                self.harness.read(self.ispb, stream.link_id, batch)
            if stream.open:
                self.end_expired(stream)
            return
        self.reap_if_idle(stream)
        result = self.harness.read(self.ispb, stream.link_id, batch)
        self.confirmed.update(stream.unconfirmed)
        stream.unconfirmed = ()
        stream.lease_until = self.now + LEASE_SECONDS
        self.deliver(stream, result)

    @precondition(lambda self: any(s.older_links for s in self.streams))
    @rule(index=st.integers(0, 20), batch=st.sampled_from([1, 3]))
    def retry(self, index: int, batch: int) -> None:
        stream = self.pick(index, [s for s in self.streams if s.older_links])
        link_id = stream.older_links[-1]
        repeatable = stream.previous is not None and stream.open and not self.lease_passed(stream)
        if not repeatable:
            with pytest.raises(StreamGone):
                self.harness.read(self.ispb, link_id, batch)
            if stream.open and self.lease_passed(stream):
                self.end_expired(stream)
            return
        assert stream.previous is not None
        result = self.harness.read(self.ispb, link_id, batch)
        assert result.end_to_end_ids == stream.previous[1].end_to_end_ids
        assert result.link_id == stream.link_id
        stream.lease_until = self.now + LEASE_SECONDS

    @precondition(lambda self: self.streams)
    @rule(index=st.integers(0, 20))
    def delete(self, index: int) -> None:
        stream = self.pick(index, self.streams)
        if stream.closed:
            self.harness.close(self.ispb, stream.link_id)  # a repeated DELETE is harmless
            return
        if not stream.open or self.lease_passed(stream):
            with pytest.raises(StreamGone):
                self.harness.close(self.ispb, stream.link_id)
            if stream.open:
                self.end_expired(stream)
            return
        self.harness.close(self.ispb, stream.link_id)
        self.confirmed.update(stream.unconfirmed)
        stream.unconfirmed = ()
        stream.open = False
        stream.closed = True

    @rule(seconds=st.sampled_from([0.5, 1.0, LEASE_SECONDS]))
    def advance_clock(self, seconds: float) -> None:
        self.harness.clock.advance(seconds)

    @rule()
    def reap(self) -> None:
        expired = [s for s in self.open_streams() if self.lease_passed(s)]
        freed = self.harness.service.reap_ispb(self.ispb)
        assert freed == len(expired)
        for stream in expired:
            self.end_expired(stream)

    # Invariants, read from the table

    @invariant()
    def table_matches_model(self) -> None:
        queues = self.harness.message_queues(self.inserted)
        assert sorted(queues) == sorted(self.inserted), "a message disappeared"
        for end_to_end_id in self.confirmed:
            assert queues[end_to_end_id] != pending_queue(self.ispb), "confirmed but pending"
        for stream in self.open_streams():
            item = self.harness.store.get_stream_item(stream.stream_id)
            assert item is not None
            committed = StreamRecord.from_item(item).committed
            for end_to_end_id in stream.unconfirmed:
                assert queues[end_to_end_id] == committed, "in flight but not held by its read"
        for end_to_end_id in self.pending():
            assert queues[end_to_end_id] == pending_queue(self.ispb), "lost from pending"
        held = [i for s in self.open_streams() for i in s.unconfirmed]
        assert len(held) == len(set(held)), "a message in flight on two streams"

    @invariant()
    def counter_matches_open_streams(self) -> None:
        assert self.harness.open_counter(self.ispb) == len(self.open_streams())


def test_stream_service_matches_model(harness: Harness) -> None:
    StreamMachine.harness = harness
    run_state_machine_as_test(
        StreamMachine,
        settings=settings(
            max_examples=15,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )

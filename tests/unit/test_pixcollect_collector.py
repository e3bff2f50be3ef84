"""Collector behaviour against an in-memory pix-stream server behind httpx.MockTransport."""

import asyncio
import io
import json
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest

from pixcollect.collector import Collector, CollectorSettings, FatalError
from pixcollect.output import MessageWriter
from pixcollect.protocol import Backoff, Message

ISPB = "12345678"
BASE_URL = "http://127.0.0.1:8000"
STREAM_PREFIX = f"/api/pix/{ISPB}/stream/"
START_PATH = STREAM_PREFIX + "start"

Handler = Callable[[], httpx.Response]
Middleware = Callable[[httpx.Request, Handler], httpx.Response]


def make_message(number: int) -> Message:
    # An endToEndId is "E", the payer's ISPB, yyyyMMddHHmm and 11 characters, 32 in all.
    return {
        "endToEndId": f"E32074986202402211927{number:011d}",
        "valor": round(number * 1.25, 2),
        "recebedor": {"ispb": ISPB},
    }


def problem(status: int, detail: str) -> httpx.Response:
    body = {"type": "about:blank", "title": "error", "status": status, "detail": detail}
    return httpx.Response(status, json=body, headers={"Content-Type": "application/problem+json"})


@dataclass
class FakeStream:
    newest: str = ""
    previous: str | None = None
    in_flight: list[Message] = field(default_factory=list)
    closed: bool = False


class FakePixServer:
    """The pix-stream contract, kept in memory.

    The reply to a link carries a batch and a new link. A GET on the new link, or a DELETE
    on it, confirms the batch. A repeated GET on the old link returns the same reply while
    the batch is unconfirmed. Every confirmation checks that the batch is already in
    ``output``, and ``stale_reads`` counts GETs on links that the contract makes invalid.
    """

    def __init__(self, messages: int = 0, *, stream_limit: int = 6, retry_after: str = "1"):
        self.total = messages
        self.pending: deque[Message] = deque(make_message(n) for n in range(messages))
        self.stream_limit = stream_limit
        self.retry_after = retry_after
        self.streams: list[FakeStream] = []
        self.links: dict[str, FakeStream] = {}
        self.requests: list[httpx.Request] = []
        self.confirmed: list[str] = []
        self.unwritten_confirmations: list[str] = []
        self.stale_reads = 0
        self.output: io.BytesIO | None = None
        self.middleware: Middleware | None = None
        self.on_drained: Callable[[], None] | None = None

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        # A real request always suspends. Without this, a task that receives replies
        # synchronously would never yield to the others or to the stop timeout.
        await asyncio.sleep(0)
        self.requests.append(request)
        if self.middleware is not None:
            return self.middleware(request, lambda: self.route(request))
        return self.route(request)

    def route(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if not path.startswith(STREAM_PREFIX):
            return problem(404, f"no route {path}")
        link_id = path.removeprefix(STREAM_PREFIX)
        if request.method == "GET" and link_id == "start":
            return self.start(request)
        stream = self.links.get(link_id)
        if stream is None:
            return problem(404, f"unknown stream {link_id}")
        if request.method == "DELETE":
            return self.delete(stream, link_id)
        return self.continue_stream(stream, link_id, request)

    def start(self, request: httpx.Request) -> httpx.Response:
        if len(self.open_streams()) >= self.stream_limit:
            response = problem(429, f"ISPB {ISPB} already has {self.stream_limit} open streams")
            response.headers["Retry-After"] = self.retry_after
            return response
        stream = FakeStream()
        self.streams.append(stream)
        return self.read(stream, request)

    def continue_stream(
        self, stream: FakeStream, link_id: str, request: httpx.Request
    ) -> httpx.Response:
        if stream.closed:
            return problem(410, "stream closed")
        if link_id == stream.newest:
            self.confirm(stream)
            return self.read(stream, request)
        if link_id == stream.previous and stream.in_flight:
            return self.batch_reply(stream, request)
        self.stale_reads += 1
        return problem(410, "not the newest link")

    def delete(self, stream: FakeStream, link_id: str) -> httpx.Response:
        if not stream.closed:
            if link_id != stream.newest:
                return problem(410, "a newer link of this stream has been issued")
            self.confirm(stream)
            stream.closed = True
        return httpx.Response(200, json={})

    def expire(self, stream: FakeStream) -> None:
        """Free the stream as its lease would, returning its unconfirmed batch to pending."""
        self.pending.extendleft(reversed(stream.in_flight))
        stream.in_flight = []
        stream.closed = True

    def read(self, stream: FakeStream, request: httpx.Request) -> httpx.Response:
        multipart = request.headers.get("Accept") == "multipart/json"
        size = 10 if multipart else 1
        batch = [self.pending.popleft() for _ in range(min(size, len(self.pending)))]
        if not batch:
            if not stream.newest:
                stream.newest = self.new_link(stream)
            if self.on_drained is not None and self.all_confirmed():
                self.on_drained()
            return httpx.Response(204, headers={"Pull-Next": self.path(stream.newest)})
        stream.previous = stream.newest or None
        stream.newest = self.new_link(stream)
        stream.in_flight = batch
        return self.batch_reply(stream, request)

    def batch_reply(self, stream: FakeStream, request: httpx.Request) -> httpx.Response:
        multipart = request.headers.get("Accept") == "multipart/json"
        body = stream.in_flight if multipart else stream.in_flight[0]
        return httpx.Response(200, json=body, headers={"Pull-Next": self.path(stream.newest)})

    def confirm(self, stream: FakeStream) -> None:
        written = self.output.getvalue().decode() if self.output is not None else ""
        for message in stream.in_flight:
            self.confirmed.append(message["endToEndId"])
            if message["endToEndId"] not in written:
                self.unwritten_confirmations.append(message["endToEndId"])
        stream.in_flight = []

    def new_link(self, stream: FakeStream) -> str:
        link_id = uuid.uuid4().hex
        self.links[link_id] = stream
        return link_id

    @staticmethod
    def path(link_id: str) -> str:
        return STREAM_PREFIX + link_id

    def open_streams(self) -> list[FakeStream]:
        return [stream for stream in self.streams if not stream.closed]

    def all_confirmed(self) -> bool:
        return not self.pending and all(not stream.in_flight for stream in self.streams)

    def stream_of(self, request: httpx.Request) -> FakeStream | None:
        return self.links.get(request.url.path.removeprefix(STREAM_PREFIX))

    def paths(self, method: str) -> list[str]:
        return [r.url.path for r in self.requests if r.method == method]


@dataclass
class Run:
    collector: Collector
    writer: MessageWriter
    output: io.BytesIO
    delays: list[float]

    def written_ids(self) -> list[str]:
        lines = self.output.getvalue().decode().splitlines()
        return [json.loads(line)["endToEndId"] for line in lines]


def expected_ids(count: int) -> set[str]:
    return {make_message(n)["endToEndId"] for n in range(count)}


def collect(
    server: FakePixServer,
    *,
    streams: int = 3,
    multipart: bool = True,
    max_messages: int | None = None,
    duration: float = 5.0,
    stop_when_drained: bool = True,
    output: io.BytesIO | None = None,
) -> Run:
    """Run a collector against ``server`` until every message is confirmed.

    Backoff delays are recorded in ``Run.delays`` instead of slept, and the backoff has no
    jitter.
    """
    output = output if output is not None else io.BytesIO()
    server.output = output
    writer = MessageWriter(output)
    delays: list[float] = []

    async def record_sleep(seconds: float) -> None:
        delays.append(seconds)
        await asyncio.sleep(0)

    settings = CollectorSettings(
        base_url=BASE_URL,
        ispb=ISPB,
        streams=streams,
        multipart=multipart,
        max_messages=max_messages,
        duration=duration,
    )

    async def run_collector() -> Collector:
        async with httpx.AsyncClient(transport=server.transport()) as client:
            collector = Collector(
                client,
                writer,
                settings,
                sleep=record_sleep,
                backoff_factory=lambda: Backoff(uniform=lambda low, high: high),
            )
            if stop_when_drained:
                server.on_drained = collector.stop
            await collector.run()
        return collector

    collector = asyncio.run(run_collector())
    return Run(collector, writer, output, delays)


def run_collector_with(
    server: FakePixServer, writer: MessageWriter, collectors: list[Collector]
) -> None:
    """Run one stream against ``server`` and append the collector to ``collectors``."""
    settings = CollectorSettings(base_url=BASE_URL, ispb=ISPB, streams=1)

    async def run_collector() -> None:
        async with httpx.AsyncClient(transport=server.transport()) as client:
            collectors.append(Collector(client, writer, settings))
            await collectors[0].run()

    asyncio.run(run_collector())


def assert_collected_everything(server: FakePixServer, run: Run) -> None:
    ids = run.written_ids()
    assert set(ids) == expected_ids(server.total)
    assert len(ids) == len(set(ids))
    assert server.all_confirmed()
    assert server.unwritten_confirmations == []
    assert server.stale_reads == 0
    assert server.open_streams() == []


def test_collects_every_message_multipart() -> None:
    server = FakePixServer(95)

    run = collect(server, streams=3)

    assert_collected_everything(server, run)
    assert sorted(server.confirmed) == sorted(expected_ids(95))
    assert run.collector.written == 95
    assert run.collector.open_streams == 0
    assert {r.headers["Accept"] for r in server.requests if r.method == "GET"} == {"multipart/json"}


def test_collects_every_message_single() -> None:
    server = FakePixServer(12)

    run = collect(server, streams=2, multipart=False)

    assert_collected_everything(server, run)
    assert {r.headers["Accept"] for r in server.requests if r.method == "GET"} == {
        "application/json"
    }


def test_follows_pull_next_exactly() -> None:
    server = FakePixServer(40)
    issued: set[str] = set()

    def record_links(request: httpx.Request, handle: Handler) -> httpx.Response:
        response = handle()
        if "Pull-Next" in response.headers:
            issued.add(response.headers["Pull-Next"])
        return response

    server.middleware = record_links

    collect(server, streams=2)

    followed = [path for path in server.paths("GET") if path != START_PATH]
    assert followed
    assert set(followed) <= issued
    assert set(server.paths("DELETE")) <= issued
    assert server.stale_reads == 0


def test_delete_on_stop_uses_newest_links() -> None:
    server = FakePixServer(30)

    run = collect(server, streams=3)

    deleted = server.paths("DELETE")
    assert len(deleted) == len(server.streams)
    assert sorted(deleted) == sorted(server.path(stream.newest) for stream in server.streams)
    assert run.collector.open_streams == 0


def test_stream_limit_429_waits_retry_after() -> None:
    server = FakePixServer(25, stream_limit=2, retry_after="7")

    run = collect(server, streams=3)

    assert_collected_everything(server, run)
    assert len(server.streams) == 2
    assert run.delays
    assert set(run.delays) == {7.0}


def test_503_retries_same_link_after_retry_after() -> None:
    server = FakePixServer(25)
    throttled: list[str] = []

    def throttle_first_link(request: httpx.Request, handle: Handler) -> httpx.Response:
        if request.method == "GET" and request.url.path != START_PATH and not throttled:
            throttled.append(request.url.path)
            response = problem(503, "store throttled")
            response.headers["Retry-After"] = "3"
            return response
        return handle()

    server.middleware = throttle_first_link

    run = collect(server, streams=1)

    assert_collected_everything(server, run)
    assert run.delays == [3.0]
    gets = server.paths("GET")
    retried_at = gets.index(throttled[0])
    assert gets[retried_at + 1] == throttled[0]


def test_503_on_start_retries_start() -> None:
    server = FakePixServer(5)
    throttled: list[str] = []

    def throttle_first_start(request: httpx.Request, handle: Handler) -> httpx.Response:
        if request.url.path == START_PATH and not throttled:
            throttled.append(request.url.path)
            response = problem(503, "store throttled")
            response.headers["Retry-After"] = "2"
            return response
        return handle()

    server.middleware = throttle_first_start

    run = collect(server, streams=1)

    assert_collected_everything(server, run)
    assert run.delays == [2.0]
    assert server.paths("GET")[:2] == [START_PATH, START_PATH]


def test_500_retries_with_backoff() -> None:
    server = FakePixServer(25)
    failures: list[int] = []

    def fail_twice(request: httpx.Request, handle: Handler) -> httpx.Response:
        if request.url.path != START_PATH and len(failures) < 2:
            failures.append(500)
            return problem(500, "internal error")
        return handle()

    server.middleware = fail_twice

    run = collect(server, streams=1)

    assert_collected_everything(server, run)
    assert run.delays == [0.5, 1.0]


def test_lost_reply_retries_same_link() -> None:
    server = FakePixServer(25)
    lost: list[str] = []

    def lose_first_batch_reply(request: httpx.Request, handle: Handler) -> httpx.Response:
        response = handle()
        if request.url.path != START_PATH and response.status_code == 200 and not lost:
            lost.append(request.url.path)
            raise httpx.ReadError("connection reset by peer", request=request)
        return response

    server.middleware = lose_first_batch_reply

    run = collect(server, streams=1)

    assert_collected_everything(server, run)
    assert run.delays == [0.5]
    gets = server.paths("GET")
    assert gets.count(lost[0]) == 2
    assert run.writer.duplicates == 0


def test_connect_error_retries() -> None:
    server = FakePixServer(5)
    refused: list[str] = []

    def refuse_first_connection(request: httpx.Request, handle: Handler) -> httpx.Response:
        if not refused:
            refused.append(request.url.path)
            raise httpx.ConnectError("connection refused", request=request)
        return handle()

    server.middleware = refuse_first_connection

    run = collect(server, streams=1)

    assert_collected_everything(server, run)
    assert run.delays == [0.5]


def test_timeout_retries_same_link() -> None:
    server = FakePixServer(15)
    timed_out: list[str] = []

    def time_out_once(request: httpx.Request, handle: Handler) -> httpx.Response:
        if request.url.path != START_PATH and not timed_out:
            timed_out.append(request.url.path)
            raise httpx.ReadTimeout("timed out", request=request)
        return handle()

    server.middleware = time_out_once

    run = collect(server, streams=1)

    assert_collected_everything(server, run)
    gets = server.paths("GET")
    assert gets.count(timed_out[0]) == 2


def test_expired_stream_restarts_and_dedups() -> None:
    server = FakePixServer(35)
    expired: list[str] = []

    def expire_before_confirmation(request: httpx.Request, handle: Handler) -> httpx.Response:
        stream = server.stream_of(request)
        if stream is not None and request.method == "GET" and stream.in_flight and not expired:
            # The lease ran out after the client wrote the batch but before it followed
            # the link, so the batch goes back to pending unconfirmed.
            expired.append(request.url.path)
            server.expire(stream)
        return handle()

    server.middleware = expire_before_confirmation

    run = collect(server, streams=1)

    assert_collected_everything(server, run)
    assert len(server.streams) == 2
    assert run.writer.duplicates == 10
    assert run.collector.written == 35


@pytest.mark.parametrize("status", [404, 410])
def test_gone_link_starts_new_stream(status: int) -> None:
    server = FakePixServer(15)
    answered: list[int] = []

    def forget_first_link(request: httpx.Request, handle: Handler) -> httpx.Response:
        stream = server.stream_of(request)
        if stream is not None and request.method == "GET" and not answered:
            answered.append(status)
            server.expire(stream)
            return problem(status, "stream expired")
        return handle()

    server.middleware = forget_first_link

    run = collect(server, streams=1)

    assert_collected_everything(server, run)
    assert server.paths("GET").count(START_PATH) == 2
    assert run.delays == []


def test_gone_on_start_starts_again() -> None:
    server = FakePixServer(15)
    answered: list[int] = []

    def expire_first_start(request: httpx.Request, handle: Handler) -> httpx.Response:
        if request.url.path == START_PATH and not answered:
            answered.append(410)
            return problem(410, "the stream expired")
        return handle()

    server.middleware = expire_first_start

    run = collect(server, streams=1)

    assert_collected_everything(server, run)
    assert server.paths("GET")[:2] == [START_PATH, START_PATH]
    assert run.delays == []


def test_invalid_json_retries_same_link() -> None:
    server = FakePixServer(15)
    garbled: list[str] = []

    def garble_first_batch(request: httpx.Request, handle: Handler) -> httpx.Response:
        if request.url.path != START_PATH and not garbled:
            garbled.append(request.url.path)
            return httpx.Response(200, content=b'[{"endToEndId": ', headers={"Pull-Next": "/x"})
        return handle()

    server.middleware = garble_first_batch

    run = collect(server, streams=1)

    assert_collected_everything(server, run)
    assert run.delays == [0.5]
    gets = server.paths("GET")
    assert gets.count(garbled[0]) == 2


def test_max_messages_stops_after_whole_batch() -> None:
    server = FakePixServer(50)

    run = collect(server, streams=1, max_messages=5, stop_when_drained=False)

    assert run.collector.written == 10
    assert len(run.written_ids()) == 10
    assert len(server.confirmed) == 10
    assert len(server.pending) == 40
    assert server.unwritten_confirmations == []
    assert server.open_streams() == []


def test_duration_stops_and_closes_streams() -> None:
    server = FakePixServer(0)

    run = collect(server, streams=2, duration=0.2, stop_when_drained=False)

    assert run.collector.written == 0
    assert len(server.paths("DELETE")) == 2
    assert server.open_streams() == []


def test_stop_before_first_reply_sends_no_delete() -> None:
    server = FakePixServer(5)
    collectors: list[Collector] = []

    def stop_during_start(request: httpx.Request, handle: Handler) -> httpx.Response:
        collectors[0].stop()
        raise httpx.ConnectError("connection refused", request=request)

    server.middleware = stop_during_start
    run_collector_with(server, MessageWriter(io.BytesIO()), collectors)

    assert server.paths("DELETE") == []
    assert server.streams == []


def test_cancelled_read_batch_kept_on_close() -> None:
    server = FakePixServer(30)
    collectors: list[Collector] = []
    reads: list[str] = []

    def stop_on_second_read(request: httpx.Request, handle: Handler) -> httpx.Response:
        response = handle()
        if request.method == "GET":
            reads.append(request.url.path)
            if len(reads) == 2:
                # The server has handed out the batch, and the client stops before it
                # reads the reply.
                collectors[0].stop()
                raise httpx.ReadError("connection reset", request=request)
        return response

    server.middleware = stop_on_second_read
    output = io.BytesIO()
    server.output = output
    writer = MessageWriter(output)

    run_collector_with(server, writer, collectors)

    # Closing on the cancelled read's link is refused, so the collector repeats that read,
    # writes the batch it claimed and closes the stream on the newer link.
    deleted = server.paths("DELETE")
    assert writer.written == 20
    assert deleted[0] == reads[1]
    assert server.paths("GET")[-1] == reads[1]
    assert len(deleted) == 2
    assert len(server.confirmed) == 20
    assert len(server.pending) == 10
    assert server.open_streams() == []
    assert server.unwritten_confirmations == []


@pytest.mark.parametrize(
    ("status", "detail"),
    [(400, "invalid ISPB"), (406, "unsupported Accept"), (404, "no such route"), (403, "no")],
)
def test_client_error_on_start_is_fatal(status: int, detail: str) -> None:
    server = FakePixServer(15)
    starts: list[str] = []

    def reject_second_start(request: httpx.Request, handle: Handler) -> httpx.Response:
        if request.url.path == START_PATH:
            starts.append(request.url.path)
            if len(starts) == 2:
                return problem(status, detail)
        return handle()

    server.middleware = reject_second_start

    with pytest.raises(FatalError, match=f"returned {status}: {detail}"):
        collect(server, streams=2, stop_when_drained=False)

    assert len(server.paths("DELETE")) == 1
    assert server.open_streams() == []
    assert server.unwritten_confirmations == []


def test_missing_pull_next_is_fatal() -> None:
    server = FakePixServer(15)

    def drop_pull_next(request: httpx.Request, handle: Handler) -> httpx.Response:
        response = handle()
        del response.headers["Pull-Next"]
        return response

    server.middleware = drop_pull_next

    run_output = io.BytesIO()

    with pytest.raises(FatalError, match="no Pull-Next header"):
        collect(server, streams=1, output=run_output)

    assert run_output.getvalue() == b""
    assert server.confirmed == []


def test_foreign_pull_next_is_fatal() -> None:
    server = FakePixServer(15)

    def redirect_pull_next(request: httpx.Request, handle: Handler) -> httpx.Response:
        response = handle()
        response.headers["Pull-Next"] = "http://127.0.0.2:8000" + response.headers["Pull-Next"]
        return response

    server.middleware = redirect_pull_next

    with pytest.raises(FatalError, match="points outside"):
        collect(server, streams=1)

    assert {request.url.host for request in server.requests} == {"127.0.0.1"}


def test_output_error_is_fatal_and_unconfirmed() -> None:
    class FailsOnSecondWrite(io.BytesIO):
        writes = 0

        def write(self, data: object) -> int:
            self.writes += 1
            if self.writes == 2:
                raise OSError(28, "No space left on device")
            assert isinstance(data, bytes)
            return super().write(data)

    server = FakePixServer(30)

    with pytest.raises(FatalError, match="writing the output failed"):
        collect(server, streams=1, output=FailsOnSecondWrite())

    # The unwritten batch stays with the stream, which returns it when its lease expires.
    [stream] = server.open_streams()
    assert len(server.confirmed) == 10
    assert len(stream.in_flight) == 10
    assert server.unwritten_confirmations == []
    server.expire(stream)
    assert len(server.pending) == 20

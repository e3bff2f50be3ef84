"""X-Ray traces of requests, recorded in memory: what they contain and what they leave out.

The app runs in this process through Chalice's test client, on DynamoDB Local; the last
test runs a local server with tracing on and reads what it sends to a stand-in daemon.
"""

import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from aws_xray_sdk.core.recorder import AWSXRayRecorder
from chalice.test import Client

from app import app
from chalicelib import tracing
from chalicelib.config import Settings
from chalicelib.runtime import Runtime, build_runtime, reset_runtime
from localdev.dynamodb_local import local_client
from localdev.schema import PROJECT_DIR
from tests.integration.conftest import ApiServer

MULTIPART = {"Accept": "multipart/json"}


class MemoryEmitter:
    """Keeps the entities an X-Ray recorder would send to the daemon."""

    def __init__(self) -> None:
        self.entities: list[Any] = []

    def send_entity(self, entity: Any) -> None:
        self.entities.append(entity)

    def set_daemon_address(self, address: str | None) -> None:
        pass

    def segments(self) -> list[dict[str, Any]]:
        return [entity.to_dict() for entity in self.entities]


def walk(entity: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Yield the subsegments under `entity`, depth first."""
    for child in entity.get("subsegments", []):
        yield child
        yield from walk(child)


@pytest.fixture
def runtime(dynamodb_endpoint: str, table_name: str) -> Iterator[Runtime]:
    settings = Settings.from_env(
        {}, table_name=table_name, wait_seconds=0.3, lease_seconds=5.0, poll_max_seconds=0.1
    )
    built = build_runtime(settings, client=local_client(dynamodb_endpoint))
    reset_runtime(built)
    yield built
    reset_runtime(None)


@pytest.fixture
def emitter() -> Iterator[MemoryEmitter]:
    memory = MemoryEmitter()
    recorder = AWSXRayRecorder()
    recorder.configure(
        service="pix-stream",
        sampling=False,
        context_missing="IGNORE_ERROR",
        emitter=memory,
        streaming_threshold=100_000,
    )
    previous = tracing.use(tracing.Tracer(recorder, own_segments=True))
    yield memory
    tracing.use(previous)


@pytest.fixture
def client() -> Iterator[Client]:
    with Client(app, stage_name="dev", project_dir=str(PROJECT_DIR)) as test_client:
        yield test_client


def collect(client: Client, runtime: Runtime, ispb: str) -> list[Any]:
    """Read 12 messages on one stream and close it; return the replies."""
    untraced = tracing.use(tracing.Tracer())
    runtime.insert_generated(ispb, 12)
    tracing.use(untraced)
    start = client.http.get(f"/api/pix/{ispb}/stream/start", headers=MULTIPART)
    following = client.http.get(start.headers["Pull-Next"], headers=MULTIPART)
    empty = client.http.get(following.headers["Pull-Next"], headers=MULTIPART)
    closed = client.http.delete(empty.headers["Pull-Next"])
    return [start, following, empty, closed]


def test_request_segment_annotates_ispb_and_stream(
    client: Client, runtime: Runtime, emitter: MemoryEmitter, ispb: str
) -> None:
    replies = collect(client, runtime, ispb)
    stream_id = replies[0].headers["Pull-Next"].rsplit("/", 1)[1].split("-")[0]

    segments = emitter.segments()

    assert [r.status_code for r in replies] == [200, 200, 204, 200]
    assert [s["name"] for s in segments] == [
        "StartStream",
        "ReadStream",
        "ReadStream",
        "CloseStream",
    ]
    for segment in segments:
        assert segment["annotations"]["ispb"] == ispb
        assert segment["annotations"]["stream_id"] == stream_id
    assert segments[0]["metadata"]["pix-stream"]["MessagesDelivered"] == 10
    assert segments[1]["metadata"]["pix-stream"]["MessagesDelivered"] == 2


def test_one_subsegment_per_poll_and_store_call(
    client: Client, runtime: Runtime, emitter: MemoryEmitter, ispb: str
) -> None:
    collect(client, runtime, ispb)

    for segment in emitter.segments():
        counts = segment["metadata"]["pix-stream"]
        children = list(walk(segment))
        polls = [c for c in children if c["name"] == "LongPollAttempt"]
        store_calls = [c for c in children if c["name"].startswith("PixStore.")]

        assert len(polls) == counts["Polls"], segment["name"]
        assert len(store_calls) == counts["StoreCalls"], segment["name"]
        for poll in polls:
            assert poll["annotations"]["ispb"] == ispb
            assert "stream_id" in poll["annotations"]
    empty_read = emitter.segments()[2]
    assert empty_read["metadata"]["pix-stream"]["EmptyPolls"] >= 2


def test_traces_hold_no_message_contents(
    client: Client, runtime: Runtime, emitter: MemoryEmitter, ispb: str
) -> None:
    replies = collect(client, runtime, ispb)
    messages = replies[0].json_body + replies[1].json_body

    text = json.dumps(emitter.segments(), ensure_ascii=False, default=str)

    for message in messages:
        assert message["pagador"]["nome"] not in text
        assert message["pagador"]["cpfCnpj"] not in text
        assert message["recebedor"]["nome"] not in text
        assert message["recebedor"]["cpfCnpj"] not in text
        assert message["txId"] not in text


def test_tracing_off_records_nothing(
    client: Client, runtime: Runtime, emitter: MemoryEmitter, ispb: str
) -> None:
    previous = tracing.use(tracing.Tracer())
    try:
        replies = collect(client, runtime, ispb)
        span = tracing.request("StartStream").__enter__()
    finally:
        tracing.use(previous)

    assert [r.status_code for r in replies] == [200, 200, 204, 200]
    assert emitter.entities == []
    assert span is tracing.NO_SPAN


def test_configure_patches_botocore_only_when_tracing() -> None:
    patched: list[tuple[str, ...]] = []
    previous = tracing.use(tracing.Tracer())
    try:
        local: dict[str, str] = {}
        local_tracer = tracing.configure(local, patch=patched.append)
        in_lambda = tracing.configure({"LAMBDA_TASK_ROOT": "/var/task"}, patch=patched.append)
        switched_off = tracing.configure(
            {"LAMBDA_TASK_ROOT": "/var/task", "PIX_TRACING": "off"}, patch=patched.append
        )
    finally:
        tracing.use(previous)

    assert not local_tracer.enabled
    assert local["AWS_XRAY_CONTEXT_MISSING"] == "IGNORE_ERROR"
    assert in_lambda.enabled
    assert not switched_off.enabled
    assert patched == [("botocore",)]


def test_local_server_sends_segments_to_daemon(
    start_server: Callable[..., ApiServer], ispb: str
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as daemon:
        daemon.bind(("127.0.0.1", 0))
        daemon.settimeout(5)
        address = f"127.0.0.1:{daemon.getsockname()[1]}"
        server = start_server(PIX_TRACING="on", AWS_XRAY_DAEMON_ADDRESS=address)
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            assert http.post(f"/api/util/msgs/{ispb}/2").status_code == 201
            reply = http.get(f"/api/pix/{ispb}/stream/start")
        server.stop()

        datagrams: list[str] = []
        segments: list[dict[str, Any]] = []
        while not any(s["name"] == "StartStream" for s in segments):
            datagrams.append(daemon.recv(65536).decode())
            header, body = datagrams[-1].split("\n", 1)
            assert json.loads(header) == {"format": "json", "version": 1}
            segments.append(json.loads(body))

    message = reply.json()
    start = next(s for s in segments if s["name"] == "StartStream")
    names = {child["name"] for child in walk(start)}
    text = "\n".join(datagrams + [json.dumps(s, ensure_ascii=False) for s in segments])
    assert reply.status_code == 200
    assert start["annotations"]["ispb"] == ispb
    assert {"LongPollAttempt", "PixStore.ClaimMessages", "dynamodb"} <= names
    assert "CreateMessages" in {s["name"] for s in segments}
    assert message["pagador"]["nome"] not in text
    assert message["pagador"]["cpfCnpj"] not in text
    assert message["recebedor"]["nome"] not in text

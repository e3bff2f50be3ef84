"""app.py in the test process (chalice.test.Client): store failures as 503 and the sweeper."""

import json
from collections.abc import Iterator

import pytest
from chalice.test import Client

import app
from chalicelib.runtime import reset_runtime
from chalicelib.store import STATE_EXPIRED, pending_queue
from tests.integration.inprocess import THROTTLE, Harness, random_ispb, runtime_of

MULTIPART = {"Accept": "multipart/json"}


@pytest.fixture(scope="module")
def harness(dynamodb_endpoint: str) -> Iterator[Harness]:
    harness = Harness.create(dynamodb_endpoint, stream_limit=2)
    reset_runtime(runtime_of(harness))
    yield harness
    reset_runtime(None)


@pytest.fixture
def client(harness: Harness) -> Iterator[Client]:
    with Client(app.app) as client:
        yield client


def ids_of(body: bytes) -> list[str]:
    return [message["endToEndId"] for message in json.loads(body)]


def test_throttled_store_returns_503_then_recovers(harness: Harness, client: Client) -> None:
    ispb = random_ispb()
    created = harness.insert(ispb, 2)
    replies = []
    for call_number in range(1, 5):  # CountClaimants, OpenStream, Query, ClaimMessages
        harness.faults.arm(call_number, THROTTLE)
        replies.append(client.http.get(f"/api/pix/{ispb}/stream/start", headers=MULTIPART))
    harness.faults.disarm()
    recovered = client.http.get(f"/api/pix/{ispb}/stream/start", headers=MULTIPART)

    for reply in replies:
        assert reply.status_code == 503
        assert reply.headers["Retry-After"] == str(harness.settings.retry_after_seconds)
        assert reply.headers["Content-Type"] == "application/problem+json"
        problem = json.loads(reply.body)
        assert problem["status"] == 503
        assert "ProvisionedThroughputExceededException" in problem["detail"]
    assert recovered.status_code == 200
    assert ids_of(recovered.body) == created


def test_sweeper_frees_expired_streams_of_several_ispbs(harness: Harness, client: Client) -> None:
    ispbs = [random_ispb() for _ in range(3)]
    created = {ispb: harness.insert(ispb, 2) for ispb in ispbs}
    streams = {ispb: [harness.start(ispb), harness.start(ispb)] for ispb in ispbs}
    alive = harness.start(random_ispb())

    harness.clock.advance(harness.settings.lease_seconds - 1)
    harness.read(alive.ispb, alive.link_id)  # renews its lease
    harness.clock.advance(1)
    event = client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )
    client.lambda_.invoke("sweep_expired_streams", event)

    for ispb in ispbs:
        assert harness.open_counter(ispb) == 0
        for stream in streams[ispb]:
            assert harness.stream_state(stream.stream_id) == STATE_EXPIRED
        queues = harness.message_queues(created[ispb])
        assert set(queues.values()) == {pending_queue(ispb)}
    assert harness.open_counter(alive.ispb) == 1

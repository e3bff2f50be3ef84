"""Delivery guarantees over HTTP when collectors vanish, replies are lost or the server dies.

The lease server runs with a 6 s lease and 1 s long polls, so a test can wait for expiry.
The lease leaves room for requests that take a few seconds on a busy machine.
"""

import contextlib
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from chalicelib.store import QUEUE_INDEX, counter_key, pending_queue
from tests.integration.conftest import ApiServer

MULTIPART = {"Accept": "multipart/json"}
LEASE_SECONDS = 6.0
SHORT_LEASE = {"PIX_LEASE_SECONDS": "6", "PIX_WAIT_SECONDS": "1", "PIX_STREAM_LIMIT": "2"}
# The killed server's stream must outlive a restart, which takes seconds on a busy machine.
RESTART_LEASE = {**SHORT_LEASE, "PIX_LEASE_SECONDS": "30"}


@pytest.fixture(scope="module")
def lease_server(start_server: Callable[..., ApiServer]) -> ApiServer:
    return start_server(**SHORT_LEASE)


@pytest.fixture
def client(lease_server: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=lease_server.base_url, timeout=30) as client:
        yield client


def create(client: httpx.Client, ispb: str, count: int) -> list[str]:
    response = client.post(f"/api/util/msgs/{ispb}/{count}")
    assert response.status_code == 201
    ids: list[str] = response.json()["endToEndIds"]
    return ids


def ids_of(response: httpx.Response) -> list[str]:
    if response.status_code == 204:
        return []
    assert response.status_code == 200, response.text
    return [message["endToEndId"] for message in response.json()]


def drain(client: httpx.Client, link: str) -> tuple[list[str], str]:
    """Follow a stream's links until a 204; return the messages read and the last link."""
    read: list[str] = []
    while True:
        response = client.get(link, headers=MULTIPART)
        read += ids_of(response)
        if response.status_code == 204:
            return read, response.headers["pull-next"]
        link = response.headers["pull-next"]


def open_streams(dynamodb: object, table_name: str, ispb: str) -> int:
    item = dynamodb.get_item(  # type: ignore[attr-defined]
        TableName=table_name, Key={"pk": {"S": counter_key(ispb)}}, ConsistentRead=True
    ).get("Item", {})
    return int(item.get("open_streams", {}).get("N", "0"))


def test_vanished_collector_messages_reach_waiting_stream(
    client: httpx.Client, dynamodb: object, table_name: str, ispb: str
) -> None:
    created = create(client, ispb, 5)
    vanished_at = time.monotonic()
    vanished = client.get(f"/api/pix/{ispb}/stream/start", headers=MULTIPART)
    staying = client.get(f"/api/pix/{ispb}/stream/start", headers=MULTIPART)
    refused = client.get(f"/api/pix/{ispb}/stream/start", headers=MULTIPART)

    # The staying collector keeps reading until the vanished one's messages reach it.
    staying_read: list[str] = []
    staying_link = staying.headers["pull-next"]
    while not staying_read and time.monotonic() < vanished_at + 4 * LEASE_SECONDS:
        response = client.get(staying_link, headers=MULTIPART)
        staying_read = ids_of(response)
        staying_link = response.headers["pull-next"]
    received_after = time.monotonic() - vanished_at
    successor = client.get(f"/api/pix/{ispb}/stream/start", headers=MULTIPART)

    assert ids_of(vanished) == created
    assert ids_of(staying) == []
    assert refused.status_code == 429
    assert staying_read == created
    # No other stream received them while the vanished stream's lease ran.
    assert received_after >= LEASE_SECONDS
    assert ids_of(successor) == []
    assert client.get(vanished.headers["pull-next"]).status_code == 410
    assert open_streams(dynamodb, table_name, ispb) == 2
    assert client.delete(staying_link).status_code == 200
    assert client.delete(successor.headers["pull-next"]).status_code == 200
    assert open_streams(dynamodb, table_name, ispb) == 0


def test_vanished_collector_messages_reach_next_stream(
    client: httpx.Client, dynamodb: object, table_name: str, ispb: str
) -> None:
    created = create(client, ispb, 5)
    vanished = client.get(f"/api/pix/{ispb}/stream/start", headers=MULTIPART)
    time.sleep(LEASE_SECONDS)

    successor = client.get(f"/api/pix/{ispb}/stream/start", headers=MULTIPART)

    assert ids_of(vanished) == created
    assert ids_of(successor) == created
    assert client.get(vanished.headers["pull-next"]).status_code == 410
    assert open_streams(dynamodb, table_name, ispb) == 1
    assert client.delete(successor.headers["pull-next"]).status_code == 200
    assert open_streams(dynamodb, table_name, ispb) == 0


def test_lease_counts_from_wait_end(start_server: Callable[..., ApiServer], ispb: str) -> None:
    server = start_server(PIX_WAIT_SECONDS="3", PIX_LEASE_SECONDS="4.5")
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        empty = client.get(f"/api/pix/{ispb}/stream/start")
        # Longer than the lease minus the wait, shorter than the lease.
        time.sleep(2.5)
        again = client.get(empty.headers["pull-next"])
        closed = client.delete(again.headers["pull-next"])

    assert empty.status_code == 204
    assert again.status_code == 204
    assert closed.status_code == 200


def wait_until_claimed(dynamodb: Any, table_name: str, ispb: str, timeout: float = 10.0) -> None:
    """Wait until no message of `ispb` is pending, so a test knows a read has claimed them."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        response = dynamodb.query(
            TableName=table_name,
            IndexName=QUEUE_INDEX,
            KeyConditionExpression="queue_key = :q",
            ExpressionAttributeValues={":q": {"S": pending_queue(ispb)}},
            Limit=1,
        )
        if not response["Items"]:
            return
        time.sleep(0.05)
    raise AssertionError(f"messages of ISPB {ispb} were still pending after {timeout} s")


def test_reply_lost_mid_poll_is_read_again(
    start_server: Callable[..., ApiServer], ispb: str, dynamodb: Any, table_name: str
) -> None:
    # A long wait keeps the abandoned read polling while the messages are created, however
    # slow the machine is.
    server = start_server(**{**SHORT_LEASE, "PIX_WAIT_SECONDS": "5", "PIX_LEASE_SECONDS": "20"})
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        first = client.get(f"/api/pix/{ispb}/stream/start", headers=MULTIPART)
        link = first.headers["pull-next"]

        # The read is sent on a raw connection that is closed once the server has claimed the
        # messages for it, so the server's reply goes to a closed connection.
        with socket.create_connection(("127.0.0.1", server.port)) as abandoned:
            request = f"GET {link} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: multipart/json\r\n\r\n"
            abandoned.sendall(request.encode())
            # One message: a read can return as soon as part of a larger batch is stored.
            created = create(client, ispb, 1)
            wait_until_claimed(dynamodb, table_name, ispb)
        other = client.get(f"/api/pix/{ispb}/stream/start", headers=MULTIPART)
        retried = client.get(link, headers=MULTIPART)
        repeated = client.get(link, headers=MULTIPART)
        after, last = drain(client, retried.headers["pull-next"])
        stale = client.get(link, headers=MULTIPART)

        assert ids_of(other) == []
        assert sorted(ids_of(retried)) == sorted(created)
        assert ids_of(repeated) == ids_of(retried)
        assert repeated.headers["pull-next"] == retried.headers["pull-next"]
        assert after == []
        assert stale.status_code == 410
        assert ids_of(client.get(other.headers["pull-next"], headers=MULTIPART)) == []
        assert client.delete(last).status_code == 200
        assert client.delete(other.headers["pull-next"]).status_code == 200


def test_server_killed_mid_poll_loses_nothing(
    start_server: Callable[..., ApiServer], dynamodb: object, table_name: str, ispb: str
) -> None:
    server = start_server(**RESTART_LEASE)
    delivered: Counter[str] = Counter()
    created: list[str] = []
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        start = client.get(f"/api/pix/{ispb}/stream/start", headers=MULTIPART)
        link = start.headers["pull-next"]
        for kill_delay in (0.0, 0.02, 0.1):
            replies: list[httpx.Response] = []

            def poll(link: str = link, replies: list[httpx.Response] = replies) -> None:
                with contextlib.suppress(httpx.TransportError):  # died before replying
                    replies.append(client.get(link, headers=MULTIPART))

            poller = threading.Thread(target=poll)
            poller.start()
            time.sleep(0.3)
            created += create(client, ispb, 15)
            time.sleep(kill_delay)
            server.stop(signal.SIGKILL)
            poller.join()
            server.start()

            # Whatever the kill interrupted, the same link is read again.
            if replies and replies[0].status_code == 200:
                delivered.update(ids_of(replies[0]))
            retried = client.get(link, headers=MULTIPART)
            if not replies or replies[0].status_code != 200:
                delivered.update(ids_of(retried))
            read, link = drain(client, retried.headers["pull-next"])
            delivered.update(read)

        assert open_streams(dynamodb, table_name, ispb) == 1
        assert client.delete(link).status_code == 200

    assert sorted(delivered) == sorted(created)
    assert set(delivered.values()) == {1}
    assert open_streams(dynamodb, table_name, ispb) == 0

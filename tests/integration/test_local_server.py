"""The three fixes of localdev.server over chalice local: per-thread request state,
TCP_NODELAY on accepted sockets and a deep accept queue."""

import random
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from localdev import server as local_server
from localdev.dynamodb_local import free_port
from tests.integration.api import MULTIPART, create, start
from tests.integration.conftest import ApiServer

# Request variants: (headers, query parameters, whether the reply is an array).
VARIANTS: list[tuple[dict[str, str], dict[str, str], bool]] = [
    ({}, {}, False),
    ({"Accept": "application/json"}, {}, False),
    (MULTIPART, {}, True),
    ({"Accept": "*/*"}, {}, False),
    ({}, {"format": "multipart"}, True),
]
ISPB_COUNT = 4
BURST_CONNECTIONS = 300
BURST_TIMEOUT_SECONDS = 30.0
# A request that the app rejects without touching DynamoDB.
CHEAP_REQUEST = (
    b"GET /api/pix/invalid/stream/start HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
)


def test_overlapping_requests_keep_own_values(default_server: ApiServer) -> None:
    ispbs = [str(n) for n in random.sample(range(10**7, 10**8), ISPB_COUNT)]
    polls = [(ispb, *variant) for ispb in ispbs for variant in VARIANTS]
    replies: list[httpx.Response | None] = [None] * len(polls)
    barrier = threading.Barrier(len(polls) + 1)

    def poll(index: int) -> None:
        ispb, headers, params, _ = polls[index]
        with httpx.Client(base_url=default_server.base_url, timeout=30) as client:
            barrier.wait()
            replies[index] = start(client, ispb, headers=headers, params=params)

    threads = [threading.Thread(target=poll, args=(i,)) for i in range(len(polls))]
    for thread in threads:
        thread.start()
    barrier.wait()
    # The polls are waiting by now: none of these ISPBs has a message yet, and the
    # server's wait is 8 s.
    time.sleep(1.0)
    with httpx.Client(base_url=default_server.base_url, timeout=30) as client:
        for ispb in ispbs:
            create(client, ispb, 30)
    for thread in threads:
        thread.join(timeout=30)

    assert len(polls) == 20
    for (ispb, _, _, multipart), reply in zip(polls, replies, strict=True):
        assert reply is not None
        assert reply.status_code == 200, (ispb, reply.text)
        assert reply.headers["pull-next"].startswith(f"/api/pix/{ispb}/stream/")
        document = reply.json()
        assert isinstance(document, list) is multipart, (ispb, multipart, document)
        for message in document if multipart else [document]:
            assert message["recebedor"]["ispb"] == ispb


@pytest.fixture
def in_process_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], list[int]]]:
    """Serve the app in this process with a handler that records TCP_NODELAY per connection.

    Yields a function that sends one request and returns the recorded values so far.
    """
    recorded: list[int] = []

    class RecordingHandler(local_server.GatewayRequestHandler):
        def setup(self) -> None:
            super().setup()
            recorded.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    monkeypatch.setattr(local_server, "GatewayRequestHandler", RecordingHandler)
    port = free_port()
    served = local_server.create_server("127.0.0.1", port, "dev")
    thread = threading.Thread(target=served.server.serve_forever, daemon=True)
    thread.start()

    def request() -> list[int]:
        # Chalice local replies to an unknown route itself, without the app or DynamoDB.
        httpx.get(f"http://127.0.0.1:{port}/no-such-route", timeout=10)
        return recorded

    try:
        yield request
    finally:
        served.shutdown()
        served.server.server_close()
        thread.join(timeout=10)


def test_accepted_sockets_have_nodelay(in_process_server: Callable[[], list[int]]) -> None:
    in_process_server()
    recorded = in_process_server()

    assert len(recorded) == 2
    assert all(value != 0 for value in recorded)


def open_burst(port: int, count: int) -> list[socket.socket]:
    """Start `count` connections at once, without waiting for any to be accepted."""
    sockets = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        sockets.append(sock)
    return sockets


def exchange(sockets: list[socket.socket], deadline: float) -> dict[socket.socket, bytes]:
    """Send one request on every socket and read each reply until the server closes it.

    A refused or reset connection raises an OSError. A socket still open at `deadline`
    keeps what it has read so far.
    """
    selector = selectors.DefaultSelector()
    replies = {sock: b"" for sock in sockets}
    for sock in sockets:
        selector.register(sock, selectors.EVENT_WRITE)
    while selector.get_map() and time.monotonic() < deadline:
        for key, events in selector.select(timeout=1.0):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if events & selectors.EVENT_WRITE:
                sock.sendall(CHEAP_REQUEST)
                selector.modify(sock, selectors.EVENT_READ)
                continue
            chunk = sock.recv(65536)
            replies[sock] += chunk
            if not chunk:
                selector.unregister(sock)
    selector.close()
    return replies


def test_connection_burst_is_all_answered(start_server: Callable[..., ApiServer]) -> None:
    api = start_server()
    sockets = open_burst(api.port, BURST_CONNECTIONS)
    try:
        replies = exchange(sockets, time.monotonic() + BURST_TIMEOUT_SECONDS)
    finally:
        for sock in sockets:
            sock.close()
        api.stop()
    status_lines = [reply.split(b"\r\n", 1)[0] for reply in replies.values()]

    assert len(status_lines) == BURST_CONNECTIONS
    assert status_lines.count(b"") == 0
    assert status_lines == [b"HTTP/1.1 400 Bad Request"] * BURST_CONNECTIONS

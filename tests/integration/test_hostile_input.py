"""Hostile requests over HTTP: each gets the right 4xx, never a 5xx, and nothing leaks."""

import http.client
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from chalicelib.store import PixStore, open_shard
from localdev.dynamodb_local import local_client
from tests.integration.conftest import ApiServer

PROBLEM_JSON = "application/problem+json"
STREAM_LIMIT = 3
FLOOD_REQUESTS = 10_000
FLOOD_WORKERS = 16
FLOOD_TIME_LIMIT_SECONDS = 45
# Fewer replies than this within the time limit means the server stalled.
MIN_FLOOD_REQUESTS = 300


@pytest.fixture(scope="module")
def hostile_server(start_server: Callable[..., ApiServer]) -> ApiServer:
    # A long lease keeps the flood's streams open for the whole test. A short wait keeps the
    # few starts that get a slot from holding their worker for long.
    return start_server(
        PIX_STREAM_LIMIT=str(STREAM_LIMIT), PIX_WAIT_SECONDS="0.2", PIX_LEASE_SECONDS="60"
    )


@pytest.fixture
def client(hostile_server: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hostile_server.base_url, timeout=30) as http_client:
        yield http_client


@pytest.fixture
def store(dynamodb_endpoint: str, table_name: str) -> PixStore:
    return PixStore(local_client(dynamodb_endpoint), table_name, time.time, 3600)


def raw_request(port: int, request: bytes) -> tuple[int, bytes]:
    """Send bytes as they are, for requests an HTTP client would refuse to build."""
    chunks: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=15) as connection:
        connection.sendall(request)
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    response = b"".join(chunks)
    if not response.startswith(b"HTTP/"):
        # http.server replies to a one-word request line as HTTP/0.9: a body, no status line.
        code = response.split(b"Error code: ", 1)[1][:3]
        return int(code), response
    status_line = response.split(b"\r\n", 1)[0]
    return int(status_line.split(b" ")[1]), response


def assert_problem(response: httpx.Response, status: int, kind: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["type"] == f"urn:pix-stream:problem:{kind}"


@pytest.mark.parametrize(
    "segment",
    [
        "1234567",
        "123456789",
        "1" * 10_000,
        "%31%32%33%34%35%36%37%38",
        "\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18",
        "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668",
        "1234567%00",
        "12345678%20",
        "+1234567",
        "-1234567",
        "1234.567",
        "%2e%2e",
        "1e7",
    ],
)
def test_invalid_ispb_is_400(client: httpx.Client, segment: str) -> None:
    response = client.get(f"/api/pix/{segment}/stream/start")

    assert_problem(response, 400, "invalid-ispb")


@pytest.mark.parametrize("method", ["GET", "DELETE"])
@pytest.mark.parametrize(
    "link_id",
    [
        "..%2F..%2Futil%2Fmsgs%2F12345678%2F5",
        "..%2Fstart",
        "%2e%2e%2fstart",
        "start%00",
        "0" * 32 + "-1",
        uuid.uuid4().hex + "-1",
        uuid.uuid4().hex + "-999999999999999999999",
        uuid.uuid4().hex,
        "x" * 5000,
        "\u00e9\u00e9",
    ],
)
def test_guessed_or_traversing_link_is_404(
    client: httpx.Client, ispb: str, method: str, link_id: str
) -> None:
    response = client.request(method, f"/api/pix/{ispb}/stream/{link_id}")

    assert_problem(response, 404, "stream-not-found")


def test_raw_dot_segments_do_not_reach_other_routes(hostile_server: ApiServer) -> None:
    for path in (
        b"/api/pix/12345678/stream/../../util/msgs/12345678/5",
        b"/api/pix/12345678/stream/./start/..",
        b"/api/pix/../pix/12345678/stream/start",
    ):
        request = b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        status, response = raw_request(hostile_server.port, request)
        assert status == 404, response
        assert b"route-not-found" in response


def test_raw_non_utf8_path_is_400(hostile_server: ApiServer) -> None:
    request = (
        b"GET /api/pix/\xff\xfe345678/stream/start HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )

    status, response = raw_request(hostile_server.port, request)

    assert status == 400, response


def test_oversized_request_line_is_414(hostile_server: ApiServer) -> None:
    path = b"/api/pix/12345678/stream/" + b"a" * 70_000
    request = b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

    status, _ = raw_request(hostile_server.port, request)

    assert status == 414


def test_oversized_header_is_431(hostile_server: ApiServer) -> None:
    request = (
        b"GET /api/pix/12345678/stream/start HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Accept: " + b"a" * 70_000 + b"\r\n\r\n"
    )

    status, _ = raw_request(hostile_server.port, request)

    assert status == 431


def test_too_many_headers_is_431(hostile_server: ApiServer) -> None:
    headers = b"".join(b"X-Filler-%d: 1\r\n" % n for n in range(200))
    request = (
        b"GET /api/pix/12345678/stream/start HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        + headers
        + b"\r\n"
    )

    status, _ = raw_request(hostile_server.port, request)

    assert status == 431


@pytest.mark.parametrize(
    ("request_line", "expected"),
    [
        (b"GARBAGE", 400),
        (b"GET /api/pix/12345678/stream/start HTTP/1.x", 400),
        (b"GET /api/pix/12345678/stream/start HTTP/1.1 extra", 400),
        (b"\x01\x02 /api/pix/12345678/stream/start HTTP/1.1", 405),
        (b"BREW /api/pix/12345678/stream/start HTTP/1.1", 405),
    ],
)
def test_malformed_request_line_is_4xx(
    hostile_server: ApiServer, request_line: bytes, expected: int
) -> None:
    request = request_line + b"\r\nHost: x\r\nConnection: close\r\n\r\n"

    status, response = raw_request(hostile_server.port, request)

    assert status == expected, response


@pytest.mark.parametrize(
    "accept",
    [
        "text/html",
        "multipart/json;q=0",
        "application/json;q=0, multipart/json;q=0",
        "application/xml, text/plain",
        "a" * 8000,
        "\u00e9/\u00e9",
        ";;;,,,",
    ],
)
def test_unacceptable_accept_is_406(client: httpx.Client, ispb: str, accept: str) -> None:
    response = client.get(
        f"/api/pix/{ispb}/stream/start",
        headers=[("Accept", accept.encode("utf-8"))],  # type: ignore[list-item]
    )

    assert_problem(response, 406, "not-acceptable")


@pytest.mark.parametrize("value", ["", "json", "MULTIPART", "multipart ", "x" * 3000])
def test_unknown_format_is_400(client: httpx.Client, ispb: str, value: str) -> None:
    response = client.get(f"/api/pix/{ispb}/stream/start", params={"format": value})

    assert_problem(response, 400, "invalid-format")


@pytest.mark.parametrize("number", ["0", "1001", "-1", "1.5", "%31", "\u0661", "1" * 400, "1e3"])
def test_invalid_message_count_is_400(client: httpx.Client, ispb: str, number: str) -> None:
    response = client.post(f"/api/util/msgs/{ispb}/{number}")

    assert_problem(response, 400, "invalid-number")


def test_other_ispb_stream_is_404(client: httpx.Client, ispb: str) -> None:
    other = f"{(int(ispb) + 1) % 10**8:08d}"
    client.post(f"/api/util/msgs/{other}/2")
    started = client.get(f"/api/pix/{other}/stream/start")
    link_id = started.headers["pull-next"].rsplit("/", 1)[1]

    read = client.get(f"/api/pix/{ispb}/stream/{link_id}")
    close = client.delete(f"/api/pix/{ispb}/stream/{link_id}")
    owner_read = client.get(started.headers["pull-next"])

    assert_problem(read, 404, "stream-not-found")
    assert_problem(close, 404, "stream-not-found")
    assert other not in read.json()["detail"]
    assert owner_read.status_code == 200
    assert owner_read.json()["recebedor"]["ispb"] == other


def test_start_flood_keeps_counter_exact(
    hostile_server: ApiServer, store: PixStore, ispb: str
) -> None:
    bystander = f"{(int(ispb) + 7) % 10**8:08d}"
    statuses: Counter[int] = Counter()
    foreign_links: list[str] = []
    lock = threading.Lock()
    path = f"/api/pix/{ispb}/stream/start"
    deadline = time.monotonic() + FLOOD_TIME_LIMIT_SECONDS

    def worker(count: int) -> None:
        # http.client on a kept-alive connection costs the client far less CPU than httpx,
        # which matters when client and server share two cores.
        connection = http.client.HTTPConnection("127.0.0.1", hostile_server.port, timeout=30)
        try:
            for _ in range(count):
                if time.monotonic() > deadline:
                    return
                connection.request("GET", path)
                response = connection.getresponse()
                response.read()
                link = response.getheader("Pull-Next") or path
                with lock:
                    statuses[response.status] += 1
                    if not link.startswith(f"/api/pix/{ispb}/stream/"):
                        foreign_links.append(link)
        finally:
            connection.close()

    started = time.monotonic()
    with ThreadPoolExecutor(FLOOD_WORKERS) as pool:
        list(pool.map(worker, [FLOOD_REQUESTS // FLOOD_WORKERS] * FLOOD_WORKERS))
    elapsed = time.monotonic() - started
    answered = sum(statuses.values())

    open_ids = store.indexed_stream_ids(open_shard(ispb), ispb)
    open_streams = [s for s in store.get_streams(open_ids) if s.state == "open"]
    summary = f"{answered} answered in {elapsed:.1f} s: {dict(statuses)}"
    print(summary)  # shown with pytest -s: the request rate this machine reached
    # NOTE: on a busy 2-core machine the time limit can stop the flood before 10,000
    # requests. The checks below apply to however many got a reply.
    assert answered >= MIN_FLOOD_REQUESTS, summary
    # 503 is the contract's reply when a DynamoDB call times out, which DynamoDB Local does
    # on an overloaded machine; a start that got one may or may not hold a slot.
    assert set(statuses) <= {204, 429, 503}, summary
    assert 1 <= statuses[204] <= STREAM_LIMIT, summary
    assert statuses[429] >= answered - STREAM_LIMIT - statuses[503], summary
    assert foreign_links == []
    assert store.open_stream_count(ispb) == len(open_streams), summary
    assert statuses[204] <= len(open_streams) <= STREAM_LIMIT, summary
    assert all(s.ispb == ispb for s in open_streams)
    assert store.open_stream_count(bystander) == 0


@pytest.mark.parametrize("authorization", ["Bearer caf\u00e9", "Bearer abc"])
def test_unknown_route_with_credentials_is_404(client: httpx.Client, authorization: str) -> None:
    response = client.post(
        "/api/pix/12345678/nothing",
        headers=[("Authorization", authorization.encode("utf-8"))],  # type: ignore[list-item]
    )

    assert_problem(response, 404, "route-not-found")
    assert "abc" not in response.text


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("format=multipart&format=multipart", 204),
        ("format=multipart&format=json", 400),
        ("format", 400),
        ("format=%00", 400),
        ("format=%ZZ", 400),
        ("a=" + "b" * 8000, 204),
        ("&&&===", 204),
    ],
)
def test_odd_query_strings(client: httpx.Client, ispb: str, query: str, status: int) -> None:
    response = client.get(f"/api/pix/{ispb}/stream/start?{query}")

    assert response.status_code == status, response.text
    if response.status_code == 204:
        client.delete(response.headers["pull-next"])


@pytest.mark.parametrize("method", ["HEAD", "PUT", "PATCH", "POST"])
def test_unrouted_method_is_405(client: httpx.Client, ispb: str, method: str) -> None:
    response = client.request(method, f"/api/pix/{ispb}/stream/start")

    assert response.status_code == 405, response.text


def test_options_is_not_server_error(client: httpx.Client, ispb: str) -> None:
    # chalice local replies to OPTIONS itself, as a CORS preflight, whatever the route.
    response = client.options(f"/api/pix/{ispb}/stream/start")

    assert response.status_code < 500, response.text


def test_large_body_on_get_is_ignored(client: httpx.Client, ispb: str) -> None:
    response = client.request("GET", f"/api/pix/{ispb}/stream/start", content=b"x" * 1_000_000)

    assert response.status_code == 204
    client.delete(response.headers["pull-next"])


@pytest.mark.parametrize("accept_encoding", ["\u00e9", "gzip;q=", "*;q=-1", "," * 2000])
def test_odd_accept_encoding_is_served(
    client: httpx.Client, ispb: str, accept_encoding: str
) -> None:
    response = client.get(
        f"/api/pix/{ispb}/stream/start",
        headers=[("Accept-Encoding", accept_encoding.encode("utf-8"))],  # type: ignore[list-item]
    )

    assert response.status_code == 204
    client.delete(response.headers["pull-next"])

"""Reading: test messages, formats, Pull-Next links, empty replies and long polling."""

import threading
import time

import httpx
import pytest

from tests.integration.api import MULTIPART, create, link_pattern, start
from tests.integration.conftest import ApiServer

DEFAULT_WAIT_SECONDS = 8.0


@pytest.mark.parametrize(
    "path", ["/api/util/msgs/{ispb}/{number}", "/api/pix/util/msgs/{ispb}/{number}/"]
)
def test_create_messages_on_both_paths(http: httpx.Client, ispb: str, path: str) -> None:
    response = http.post(path.format(ispb=ispb, number=3))
    body = response.json()
    delivered = start(http, ispb, headers=MULTIPART)

    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    assert body["quantidade"] == 3
    assert len(body["endToEndIds"]) == 3
    assert [m["endToEndId"] for m in delivered.json()] == body["endToEndIds"]


@pytest.mark.parametrize("number", ["1", "1000"])
def test_create_accepts_number_bounds(http: httpx.Client, ispb: str, number: str) -> None:
    response = http.post(f"/api/util/msgs/{ispb}/{number}")

    assert response.status_code == 201
    assert response.json()["quantidade"] == int(number)


def test_created_message_follows_contract(http: httpx.Client, ispb: str) -> None:
    created = create(http, ispb, 1)

    message = start(http, ispb).json()

    assert message["endToEndId"] == created[0]
    assert len(message["endToEndId"]) == 32
    assert message["recebedor"]["ispb"] == ispb
    assert message["endToEndId"][1:9] == message["pagador"]["ispb"]
    assert message["dataHoraPagamento"].endswith("Z")


@pytest.mark.parametrize("accept", [None, "application/json", "application/*", "*/*"])
def test_single_formats_return_one_object(
    http: httpx.Client, ispb: str, accept: str | None
) -> None:
    created = create(http, ispb, 2)
    headers = {"Accept": accept} if accept else {}

    response = start(http, ispb, headers=headers)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["endToEndId"] == created[0]


def test_format_parameter_returns_array(http: httpx.Client, ispb: str) -> None:
    created = create(http, ispb, 3)

    response = start(http, ispb, params={"format": "multipart"})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert [m["endToEndId"] for m in response.json()] == created


def test_format_parameter_on_continue_returns_array(http: httpx.Client, ispb: str) -> None:
    first = create(http, ispb, 1)
    link = start(http, ispb).headers["pull-next"]
    second = create(http, ispb, 2)

    response = http.get(link, params={"format": "multipart"})

    assert first != second
    assert [m["endToEndId"] for m in response.json()] == second


def test_multipart_with_one_pending_is_array(http: httpx.Client, ispb: str) -> None:
    created = create(http, ispb, 1)

    response = start(http, ispb, headers=MULTIPART)

    assert response.status_code == 200
    assert [m["endToEndId"] for m in response.json()] == created


def test_multipart_returns_at_most_ten(http: httpx.Client, ispb: str) -> None:
    create(http, ispb, 25)

    response = start(http, ispb, headers=MULTIPART)

    assert len(response.json()) == 10


def test_every_reply_carries_pull_next(http: httpx.Client, ispb: str) -> None:
    pattern = link_pattern(ispb)

    empty_start = start(http, ispb)
    empty_link = empty_start.headers["pull-next"]
    create(http, ispb, 2)
    first = http.get(empty_link)
    second = http.get(first.headers["pull-next"])
    empty_continue = http.get(second.headers["pull-next"])
    create(http, ispb, 1)
    full_start = start(http, ispb)

    replies = [empty_start, first, second, empty_continue, full_start]
    assert [r.status_code for r in replies] == [204, 200, 200, 204, 200]
    for reply in replies:
        assert pattern.match(reply.headers["pull-next"]), reply.headers["pull-next"]
    assert first.headers["pull-next"] != empty_link
    assert second.headers["pull-next"] != first.headers["pull-next"]
    assert empty_continue.headers["pull-next"] == second.headers["pull-next"]


def test_empty_reply_has_no_body(http: httpx.Client, ispb: str) -> None:
    started = start(http, ispb)
    continued = http.get(started.headers["pull-next"], headers=MULTIPART)

    for response in (started, continued):
        assert response.status_code == 204
        assert response.content == b""
        assert response.headers.get("content-length", "0") == "0"


def test_links_of_different_streams_differ(http: httpx.Client, ispb: str) -> None:
    create(http, ispb, 3)
    links = {start(http, ispb).headers["pull-next"] for _ in range(3)}

    assert len(links) == 3


def test_message_created_mid_wait_returns_at_once(default_server: ApiServer, ispb: str) -> None:
    replies: list[httpx.Response] = []
    waited: list[float] = []

    def poll() -> None:
        with httpx.Client(base_url=default_server.base_url, timeout=30) as client:
            began = time.monotonic()
            replies.append(start(client, ispb))
            waited.append(time.monotonic() - began)

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(1.0)
    with httpx.Client(base_url=default_server.base_url, timeout=30) as client:
        created = create(client, ispb, 1)
    poller.join(timeout=30)

    assert replies[0].status_code == 200
    assert replies[0].json()["endToEndId"] == created[0]
    assert waited[0] < DEFAULT_WAIT_SECONDS


def test_default_wait_returns_204_after_eight_seconds(default_server: ApiServer, ispb: str) -> None:
    with httpx.Client(base_url=default_server.base_url, timeout=30) as client:
        began = time.monotonic()
        response = start(client, ispb)
        waited = time.monotonic() - began

    assert response.status_code == 204
    assert response.content == b""
    assert link_pattern(ispb).match(response.headers["pull-next"])
    # The server waits the whole 8 s. The upper bound only shows that it did not wait for
    # something longer, such as a second wait period or the 60 s lease.
    assert waited >= DEFAULT_WAIT_SECONDS
    assert waited < 2 * DEFAULT_WAIT_SECONDS


def test_stream_without_competition_reads_in_order(http: httpx.Client, ispb: str) -> None:
    # The idle first stream gives the second one a claim slot other than 0.
    idle = start(http, ispb)
    reader = start(http, ispb, headers=MULTIPART)
    created = create(http, ispb, 25)

    read: list[str] = []
    link = reader.headers["pull-next"]
    for _ in range(5):
        response = http.get(link, headers=MULTIPART)
        if response.status_code == 204:
            break
        read += [message["endToEndId"] for message in response.json()]
        link = response.headers["pull-next"]

    assert read == created
    assert http.delete(link).status_code == 200
    assert http.delete(idle.headers["pull-next"]).status_code == 200

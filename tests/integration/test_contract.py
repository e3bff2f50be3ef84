"""The HTTP contract end to end: chalice local (fixed) over DynamoDB Local."""

import json

import httpx

from tests.integration.api import MULTIPART, create
from tests.integration.conftest import ApiServer


def test_start_returns_one_message_as_object(http: httpx.Client, ispb: str) -> None:
    created = create(http, ispb, 2)

    response = http.get(f"/api/pix/{ispb}/stream/start")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    message = response.json()
    assert message["endToEndId"] == created[0]
    assert message["recebedor"]["ispb"] == ispb
    assert response.headers["pull-next"].startswith(f"/api/pix/{ispb}/stream/")


def test_multipart_returns_array_and_follows_links(http: httpx.Client, ispb: str) -> None:
    created = create(http, ispb, 15)

    first = http.get(f"/api/pix/{ispb}/stream/start", headers=MULTIPART)
    second = http.get(first.headers["pull-next"], headers=MULTIPART)
    third = http.get(second.headers["pull-next"], headers=MULTIPART)

    assert first.status_code == 200
    assert [m["endToEndId"] for m in first.json()] == created[:10]
    assert [m["endToEndId"] for m in second.json()] == created[10:]
    assert third.status_code == 204
    assert third.content == b""
    assert third.headers["pull-next"] == second.headers["pull-next"]


def test_repeated_accept_headers_count_as_one_list(http: httpx.Client, ispb: str) -> None:
    created = create(http, ispb, 3)
    headers = [("Accept", "application/json;q=0.5"), ("Accept", "multipart/json")]

    response = http.get(f"/api/pix/{ispb}/stream/start", headers=headers)

    assert response.status_code == 200
    assert [m["endToEndId"] for m in response.json()] == created


def test_delete_closes_stream_and_repeats_harmlessly(http: httpx.Client, ispb: str) -> None:
    start = http.get(f"/api/pix/{ispb}/stream/start")
    link = start.headers["pull-next"]

    closed = http.delete(link)
    again = http.delete(link)
    read_after = http.get(link)

    assert closed.status_code == 200
    assert closed.json() == {}
    assert again.status_code == 200
    assert read_after.status_code == 410
    assert read_after.headers["content-type"] == "application/problem+json"


def test_seventh_stream_is_refused_at_once(
    server: ApiServer, http: httpx.Client, ispb: str
) -> None:
    links = [http.get(f"/api/pix/{ispb}/stream/start").headers["pull-next"] for _ in range(6)]

    refused = http.get(f"/api/pix/{ispb}/stream/start")

    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    problem = refused.json()
    assert problem["status"] == 429
    assert ispb in problem["detail"]
    assert refused.elapsed.total_seconds() < float(server.settings["PIX_WAIT_SECONDS"])
    assert http.delete(links[0]).status_code == 200
    assert http.get(f"/api/pix/{ispb}/stream/start").status_code == 204


def test_repeated_link_returns_same_messages(http: httpx.Client, ispb: str) -> None:
    create(http, ispb, 3)
    first = http.get(f"/api/pix/{ispb}/stream/start", headers=MULTIPART)
    link = first.headers["pull-next"]
    create(http, ispb, 2)

    second = http.get(link, headers=MULTIPART)
    repeated = http.get(link, headers=MULTIPART)

    assert repeated.status_code == 200
    assert json.loads(repeated.content) == json.loads(second.content)
    assert repeated.headers["pull-next"] == second.headers["pull-next"]


def test_repeat_in_single_format_is_refused(http: httpx.Client, ispb: str) -> None:
    start = http.get(f"/api/pix/{ispb}/stream/start")
    link = start.headers["pull-next"]
    create(http, ispb, 3)
    batch = http.get(link, headers=MULTIPART)

    single = http.get(link)
    again = http.get(link, headers=MULTIPART)

    assert batch.status_code == 200
    assert single.status_code == 406
    assert single.headers["content-type"] == "application/problem+json"
    assert "multipart/json" in single.json()["detail"]
    assert json.loads(again.content) == json.loads(batch.content)
    assert http.delete(again.headers["pull-next"]).status_code == 200


def test_delete_before_newest_link_keeps_stream(http: httpx.Client, ispb: str) -> None:
    first = http.get(f"/api/pix/{ispb}/stream/start")
    older = first.headers["pull-next"]
    created = create(http, ispb, 1)
    read = http.get(older)
    newer = read.headers["pull-next"]

    rejected = http.delete(older)
    other = http.get(f"/api/pix/{ispb}/stream/start")
    closed = http.delete(newer)

    assert read.json()["endToEndId"] == created[0]
    assert rejected.status_code == 410
    # The message stays with the first stream, which the DELETE on its newest link confirms.
    assert other.status_code == 204
    assert closed.status_code == 200
    assert http.delete(older).status_code == 410
    assert http.delete(newer).status_code == 200
    assert http.get(other.headers["pull-next"]).status_code == 204
    assert http.delete(other.headers["pull-next"]).status_code == 200


def test_delete_on_outdated_link_is_gone(http: httpx.Client, ispb: str) -> None:
    create(http, ispb, 3)
    start = http.get(f"/api/pix/{ispb}/stream/start")
    second = http.get(start.headers["pull-next"])
    third = http.get(second.headers["pull-next"])

    outdated = http.delete(start.headers["pull-next"])
    newest = http.delete(third.headers["pull-next"])
    successor = http.get(f"/api/pix/{ispb}/stream/start")

    assert third.status_code == 200
    assert outdated.status_code == 410
    assert outdated.headers["content-type"] == "application/problem+json"
    assert newest.status_code == 200
    assert successor.status_code == 204
    assert http.delete(successor.headers["pull-next"]).status_code == 200

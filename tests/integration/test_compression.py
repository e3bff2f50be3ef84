"""The local server gzips replies as API Gateway does with minimum_compression_size set."""

import gzip
import json
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.integration.conftest import ApiServer

MINIMUM_SIZE = 100


@pytest.fixture(scope="module")
def raw_http(start_server: Callable[..., ApiServer]) -> Iterator[httpx.Client]:
    """A client that leaves bodies as sent, against a server compressing from 100 bytes."""
    server = start_server(PIX_LOCAL_MIN_COMPRESSION_SIZE=str(MINIMUM_SIZE))
    # httpx sends Accept-Encoding and decodes gzip itself unless told otherwise per request.
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        yield client


def read_raw(
    client: httpx.Client, path: str, headers: dict[str, str]
) -> tuple[httpx.Response, bytes]:
    request = client.build_request("GET", path, headers=headers)
    response = client.send(request, stream=True)
    try:
        body = b"".join(response.iter_raw())
    finally:
        response.close()
    return response, body


def test_gzip_reply_decompresses_to_same_json(raw_http: httpx.Client, ispb: str) -> None:
    raw_http.post(f"/api/util/msgs/{ispb}/20")
    multipart = {"Accept": "multipart/json"}
    start = raw_http.get(f"/api/pix/{ispb}/stream/start", headers=multipart)
    link = start.headers["pull-next"]

    response, body = read_raw(raw_http, link, {**multipart, "Accept-Encoding": "gzip"})
    # A repeated GET of the newest link returns the same messages again, here uncompressed.
    repeat, plain = read_raw(raw_http, link, {**multipart, "Accept-Encoding": "identity"})

    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert int(response.headers["content-length"]) == len(body)
    assert response.headers["pull-next"] == repeat.headers["pull-next"]
    assert repeat.status_code == 200
    assert "content-encoding" not in repeat.headers
    assert gzip.decompress(body) == plain
    assert len(json.loads(plain)) == 10


def test_no_gzip_without_accept_encoding(raw_http: httpx.Client, ispb: str) -> None:
    raw_http.post(f"/api/util/msgs/{ispb}/3")

    response, body = read_raw(
        raw_http, f"/api/pix/{ispb}/stream/start", {"Accept-Encoding": "identity"}
    )

    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert json.loads(body)["recebedor"]["ispb"] == ispb


@pytest.mark.parametrize("accept_encoding", ["gzip;q=0", "br", "deflate;q=1"])
def test_no_gzip_when_gzip_not_accepted(
    raw_http: httpx.Client, ispb: str, accept_encoding: str
) -> None:
    raw_http.post(f"/api/util/msgs/{ispb}/1")

    response, body = read_raw(
        raw_http, f"/api/pix/{ispb}/stream/start", {"Accept-Encoding": accept_encoding}
    )

    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert json.loads(body)["recebedor"]["ispb"] == ispb


def test_reply_below_minimum_not_compressed(raw_http: httpx.Client, ispb: str) -> None:
    start = raw_http.get(f"/api/pix/{ispb}/stream/start")
    request = raw_http.build_request(
        "DELETE", start.headers["pull-next"], headers={"Accept-Encoding": "gzip"}
    )

    response = raw_http.send(request)

    assert response.status_code == 200
    assert response.content == b"{}"
    assert "content-encoding" not in response.headers


def test_204_never_compressed(raw_http: httpx.Client, ispb: str) -> None:
    response, body = read_raw(
        raw_http, f"/api/pix/{ispb}/stream/start", {"Accept-Encoding": "gzip"}
    )

    assert response.status_code == 204
    assert body == b""
    assert "content-encoding" not in response.headers


def test_dev_stage_without_setting_never_compresses(http: httpx.Client, ispb: str) -> None:
    http.post(f"/api/util/msgs/{ispb}/10")

    response, body = read_raw(
        http,
        f"/api/pix/{ispb}/stream/start",
        {"Accept": "multipart/json", "Accept-Encoding": "gzip"},
    )

    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert len(json.loads(body)) == 10

"""Parsing of pix-stream replies in pixcollect.protocol."""

from datetime import UTC, datetime

import httpx
import pytest

from pixcollect.protocol import (
    Backoff,
    ProtocolError,
    end_to_end_id,
    parse_batch,
    parse_retry_after,
    problem_detail,
    resolve_link,
)

BASE_URL = httpx.URL("http://127.0.0.1:8000")


def test_parse_batch_single_object() -> None:
    messages = parse_batch(b'{"endToEndId": "E1", "valor": 90.20}')

    assert messages == [{"endToEndId": "E1", "valor": 90.2}]


def test_parse_batch_array() -> None:
    messages = parse_batch(b'[{"endToEndId": "E1"}, {"endToEndId": "E2"}]')

    assert [message["endToEndId"] for message in messages] == ["E1", "E2"]


def test_parse_batch_empty_array() -> None:
    assert parse_batch(b"[]") == []


@pytest.mark.parametrize(
    ("body", "expected_error"),
    [
        (b"", "not valid JSON"),
        (b"{", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b'"text"', "JSON str, expected an object or an array"),
        (b"42", "JSON int, expected an object or an array"),
        (b'[{"endToEndId": "E1"}, 7]', "item 1 of the reply array is a JSON int"),
    ],
)
def test_parse_batch_rejects_invalid_body(body: bytes, expected_error: str) -> None:
    with pytest.raises(ProtocolError, match=expected_error):
        parse_batch(body)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"endToEndId": "E32074986202402211927AB12CD34EF5"}, "E32074986202402211927AB12CD34EF5"),
        ({}, None),
        ({"endToEndId": ""}, None),
        ({"endToEndId": 12}, None),
        ({"endToEndId": None}, None),
    ],
)
def test_end_to_end_id(message: dict[str, object], expected: str | None) -> None:
    assert end_to_end_id(message) == expected


def test_resolve_link_relative_path() -> None:
    link = resolve_link(BASE_URL, "/api/pix/12345678/stream/abc")

    assert link == httpx.URL("http://127.0.0.1:8000/api/pix/12345678/stream/abc")


def test_resolve_link_keeps_query() -> None:
    link = resolve_link(BASE_URL, "/api/pix/12345678/stream/abc?format=multipart")

    assert link.params["format"] == "multipart"


def test_resolve_link_absolute_same_origin() -> None:
    link = resolve_link(BASE_URL, "http://127.0.0.1:8000/api/pix/12345678/stream/abc")

    assert link.path == "/api/pix/12345678/stream/abc"


@pytest.mark.parametrize("link", [None, ""])
def test_resolve_link_rejects_missing_header(link: str | None) -> None:
    with pytest.raises(ProtocolError, match="no Pull-Next header"):
        resolve_link(BASE_URL, link)


@pytest.mark.parametrize(
    "link",
    [
        "http://127.0.0.2:8000/api/pix/12345678/stream/abc",
        "http://127.0.0.1:8001/api/pix/12345678/stream/abc",
        "https://127.0.0.1:8000/api/pix/12345678/stream/abc",
        "//example.invalid/api/pix/12345678/stream/abc",
    ],
)
def test_resolve_link_rejects_other_origin(link: str) -> None:
    with pytest.raises(ProtocolError, match="points outside"):
        resolve_link(BASE_URL, link)


NOW = datetime(2024, 2, 21, 19, 27, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("3", 3.0),
        (" 0 ", 0.0),
        ("120", 120.0),
        ("Wed, 21 Feb 2024 19:27:05 GMT", 5.0),
        ("Wed, 21 Feb 2024 19:26:00 GMT", 0.0),
        (None, None),
        ("", None),
        ("-1", None),
        ("1.5", None),
        ("soon", None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == expected


def test_problem_detail_prefers_detail() -> None:
    response = httpx.Response(
        400,
        json={"type": "about:blank", "title": "Bad Request", "status": 400, "detail": "bad ispb"},
    )

    assert problem_detail(response) == "bad ispb"


def test_problem_detail_falls_back_to_title() -> None:
    response = httpx.Response(410, json={"title": "Gone", "status": 410})

    assert problem_detail(response) == "Gone"


def test_problem_detail_falls_back_to_body() -> None:
    response = httpx.Response(502, text="<html>Bad Gateway</html>")

    assert problem_detail(response) == "<html>Bad Gateway</html>"


def test_backoff_doubles_up_to_maximum() -> None:
    backoff = Backoff(initial=0.5, maximum=4.0, uniform=lambda low, high: high)

    delays = [backoff.next_delay() for _ in range(6)]

    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_backoff_jitter_range() -> None:
    ranges: list[tuple[float, float]] = []

    def record_range(low: float, high: float) -> float:
        ranges.append((low, high))
        return low

    backoff = Backoff(initial=1.0, maximum=8.0, uniform=record_range)
    backoff.next_delay()
    backoff.next_delay()

    assert ranges == [(0.5, 1.0), (1.0, 2.0)]


def test_backoff_reset() -> None:
    backoff = Backoff(initial=0.5, maximum=30.0, uniform=lambda low, high: high)
    backoff.next_delay()
    backoff.next_delay()

    backoff.reset()

    assert backoff.next_delay() == 0.5


def test_backoff_survives_long_outage() -> None:
    backoff = Backoff(initial=0.5, maximum=30.0, uniform=lambda low, high: high)
    backoff.failures = 5000

    assert backoff.next_delay() == 30.0

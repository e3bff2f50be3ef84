"""Accept negotiation, path validation, replies and problem documents."""

import json

import pytest

from chalicelib import http
from chalicelib.errors import (
    AccessDenied,
    InvalidFormat,
    InvalidIspb,
    InvalidNumber,
    NotAcceptable,
    PixStreamError,
    StoreUnavailable,
    StreamGone,
    StreamLimitReached,
    StreamNotFound,
    Unauthenticated,
)
from chalicelib.streams import ReadResult

STREAM_ID = "0123456789abcdef0123456789abcdef"
# Digits that str.isdigit() accepts but an ISPB or a number must not contain.
ARABIC_INDIC_ISPB = "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668"
ARABIC_INDIC_TEN = "\u0661\u0660"


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "",
        "application/json",
        "application/*",
        "*/*",
        "Application/JSON",
        "application/json; charset=utf-8",
        "text/html, application/json",
        "application/json;q=0.5, text/plain",
    ],
)
def test_single_message_formats(accept: str | None) -> None:
    assert http.wants_multipart(accept, None) is False


@pytest.mark.parametrize(
    "accept",
    [
        "multipart/json",
        "Multipart/JSON",
        "multipart/json;q=0.9",
        "application/json, multipart/json",
        "text/html, multipart/json;q=0.1",
        "*/*;q=0.1, multipart/json",
    ],
)
def test_multipart_formats(accept: str) -> None:
    assert http.wants_multipart(accept, None) is True


@pytest.mark.parametrize(
    "accept",
    [
        "text/html",
        "application/xml",
        "multipart/mixed",
        "application/json;q=0",
        "multipart/json;q=0",
        "*/*;q=0",
        "application/json;q=0, multipart/json;q=0.0",
        "application/json;q=abc",
    ],
)
def test_unservable_accept_is_not_acceptable(accept: str) -> None:
    with pytest.raises(NotAcceptable) as raised:
        http.wants_multipart(accept, None)

    assert accept in str(raised.value)


def test_zero_quality_range_is_excluded() -> None:
    assert http.wants_multipart("multipart/json;q=0, application/json", None) is False


def test_higher_quality_single_wins() -> None:
    assert http.wants_multipart("multipart/json;q=0.5, application/json;q=0.9", None) is False
    assert http.wants_multipart("application/json;q=0, multipart/json", None) is True


@pytest.mark.parametrize("accept", [None, "application/json", "*/*", "multipart/json"])
def test_format_parameter_selects_array(accept: str | None) -> None:
    assert http.wants_multipart(accept, "multipart") is True


def test_format_parameter_does_not_override_unservable_accept() -> None:
    with pytest.raises(NotAcceptable):
        http.wants_multipart("text/html", "multipart")


@pytest.mark.parametrize("value", ["", "json", "MULTIPART", "multipart/json", "array"])
def test_unknown_format_value_is_invalid(value: str) -> None:
    with pytest.raises(InvalidFormat) as raised:
        http.wants_multipart(None, value)

    assert repr(value) in str(raised.value)


@pytest.mark.parametrize("value", ["00000000", "12345678", "99999999"])
def test_valid_ispb_is_accepted(value: str) -> None:
    assert http.validate_ispb(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "1234567",
        "123456789",
        "1234567a",
        "%31%32345678",
        ARABIC_INDIC_ISPB,
        "1234 567",
        "",
        "12345678\n",
    ],
)
def test_invalid_ispb_is_rejected(value: str) -> None:
    with pytest.raises(InvalidIspb) as raised:
        http.validate_ispb(value)

    assert repr(value) in str(raised.value)


@pytest.mark.parametrize(("value", "expected"), [("1", 1), ("10", 10), ("1000", 1000)])
def test_valid_number_is_parsed(value: str, expected: int) -> None:
    assert http.parse_number(value, 1000) == expected


@pytest.mark.parametrize(
    "value", ["0", "1001", "-1", "abc", "1.5", "", ARABIC_INDIC_TEN, "+5", "1e3"]
)
def test_invalid_number_is_rejected(value: str) -> None:
    with pytest.raises(InvalidNumber) as raised:
        http.parse_number(value, 1000)

    assert repr(value) in str(raised.value)


def result(bodies: tuple[str, ...]) -> ReadResult:
    ids = tuple(f"E{i}" for i in range(len(bodies)))
    return ReadResult("12345678", STREAM_ID, 3, bodies, ids)


def test_empty_read_is_204_without_body() -> None:
    response = http.read_response(result(()), multipart=False).to_dict()

    assert response["statusCode"] == 204
    assert response["body"] == ""
    assert response["headers"]["Pull-Next"] == f"/api/pix/12345678/stream/{STREAM_ID}-3"


def test_single_read_is_one_object() -> None:
    response = http.read_response(result(('{"a":1}',)), multipart=False).to_dict()

    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"a": 1}
    assert response["headers"]["Content-Type"] == "application/json"
    assert response["headers"]["Pull-Next"] == f"/api/pix/12345678/stream/{STREAM_ID}-3"


def test_multipart_read_is_array() -> None:
    response = http.read_response(result(('{"a":1}', '{"a":2}')), multipart=True).to_dict()

    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == [{"a": 1}, {"a": 2}]
    assert response["headers"]["Content-Type"] == "application/json"


def test_multipart_read_of_one_message_is_array() -> None:
    response = http.read_response(result(('{"a":1}',)), multipart=True).to_dict()

    assert json.loads(response["body"]) == [{"a": 1}]


ERRORS: list[tuple[PixStreamError, int, str, str]] = [
    (InvalidIspb("1234567"), 400, "invalid-ispb", "'1234567'"),
    (InvalidNumber("1001", 1000), 400, "invalid-number", "'1001'"),
    (InvalidFormat("xml"), 400, "invalid-format", "'xml'"),
    (StreamNotFound("12345678", "nope"), 404, "stream-not-found", "'nope'"),
    (NotAcceptable("text/html"), 406, "not-acceptable", "'text/html'"),
    (StreamGone("abc-2", "the stream was closed"), 410, "stream-gone", "'abc-2'"),
    (StreamLimitReached("12345678", 6), 429, "stream-limit-reached", "12345678"),
    (StoreUnavailable("Query", "ThrottlingException"), 503, "store-unavailable", "Throttling"),
    (Unauthenticated(), 401, "unauthenticated", "Authorization"),
    (AccessDenied("12345678"), 403, "access-denied", "'12345678'"),
]


@pytest.mark.parametrize(("error", "status", "kind", "named"), ERRORS)
def test_error_becomes_problem_document(
    error: PixStreamError, status: int, kind: str, named: str
) -> None:
    response = http.error_response(error, retry_after=3).to_dict()
    document = json.loads(response["body"])

    assert response["statusCode"] == status
    assert response["headers"]["Content-Type"] == "application/problem+json"
    assert document["type"] == f"urn:pix-stream:problem:{kind}"
    assert document["title"]
    assert document["status"] == status
    assert named in document["detail"]
    assert set(document) == {"type", "title", "status", "detail"}


@pytest.mark.parametrize(("error", "status", "kind", "named"), ERRORS)
def test_retry_after_only_on_429_and_503(
    error: PixStreamError, status: int, kind: str, named: str
) -> None:
    headers = http.error_response(error, retry_after=3).to_dict()["headers"]

    if status in (429, 503):
        assert headers["Retry-After"] == "3"
    else:
        assert "Retry-After" not in headers


def test_every_domain_error_has_a_problem_type() -> None:
    mapped = {type(error) for error, *_ in ERRORS}

    assert mapped == set(http.PROBLEMS)
    assert set(PixStreamError.__subclasses__()) == mapped


def test_accept_header_joins_repeated_values() -> None:
    event = {
        "headers": {"accept": "multipart/json"},
        "multiValueHeaders": {"Accept": ["application/json;q=0.5", "multipart/json"]},
    }

    assert http.accept_header(event) == "application/json;q=0.5, multipart/json"


def test_accept_header_without_multiple_values() -> None:
    assert http.accept_header({"headers": {"Accept": "multipart/json"}}) == "multipart/json"
    assert http.accept_header({"headers": {}, "multiValueHeaders": None}) is None

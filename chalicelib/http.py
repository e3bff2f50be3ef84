"""HTTP replies: content negotiation, message bodies, headers and problem documents."""

import json
from collections.abc import Mapping
from typing import Any

from chalice.app import Response

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
from chalicelib.messages import is_valid_ispb
from chalicelib.streams import ReadResult

JSON = "application/json"
PROBLEM_JSON = "application/problem+json"
MULTIPART_JSON = "multipart/json"
SINGLE_MEDIA_RANGES = frozenset({JSON, "application/*", "*/*"})

# Status, problem type and title of each domain error.
PROBLEMS: dict[type[PixStreamError], tuple[int, str, str]] = {
    InvalidIspb: (400, "invalid-ispb", "Invalid ISPB"),
    InvalidNumber: (400, "invalid-number", "Invalid number of messages"),
    InvalidFormat: (400, "invalid-format", "Invalid format"),
    Unauthenticated: (401, "unauthenticated", "Missing or unknown API key"),
    AccessDenied: (403, "access-denied", "Access to this ISPB denied"),
    StreamNotFound: (404, "stream-not-found", "Stream not found"),
    NotAcceptable: (406, "not-acceptable", "Not acceptable"),
    StreamGone: (410, "stream-gone", "Stream link no longer valid"),
    StreamLimitReached: (429, "stream-limit-reached", "Too many open streams"),
    StoreUnavailable: (503, "store-unavailable", "Store unavailable"),
}
PROBLEM_TYPE_PREFIX = "urn:pix-stream:problem:"


def validate_ispb(value: str) -> str:
    # Chalice passes path segments undecoded, so percent-encoded or non-ASCII digits are
    # rejected as they arrive instead of being decoded into something that looks valid.
    if not is_valid_ispb(value):
        raise InvalidIspb(value)
    return value


def parse_number(value: str, maximum: int) -> int:
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= maximum:
        raise InvalidNumber(value, maximum)
    return int(value)


def accept_header(event: Mapping[str, Any]) -> str | None:
    """Return a request's Accept header, with repeated Accept headers joined into one list.

    API Gateway puts only the last value of a repeated header in the event's ``headers``, and
    every value in ``multiValueHeaders``; HTTP reads repeated Accept headers as one list.
    """
    for name, values in (event.get("multiValueHeaders") or {}).items():
        if name.lower() == "accept" and values:
            return ", ".join(values)
    for name, value in (event.get("headers") or {}).items():
        if name.lower() == "accept":
            return str(value)
    return None


def wants_multipart(accept: str | None, format_param: str | None) -> bool:
    """Decide between one message and an array, or raise `NotAcceptable`.

    ``multipart/json`` selects the array, as does ``?format=multipart``;
    ``application/json``, ``application/*``, ``*/*`` or no ``Accept`` select one message.
    Media ranges with ``q=0`` are excluded, as RFC 9110 defines, and when both formats are
    acceptable the one with the higher quality wins (the array on a tie).
    """
    if format_param is not None and format_param != "multipart":
        raise InvalidFormat(format_param)
    ranges = _media_ranges(accept)
    if ranges is None:
        return format_param is not None
    multipart_quality = ranges.get(MULTIPART_JSON, 0.0)
    single_quality = max((q for m, q in ranges.items() if m in SINGLE_MEDIA_RANGES), default=0.0)
    if multipart_quality > 0 and multipart_quality >= single_quality:
        return True
    if single_quality > 0:
        return format_param is not None
    raise NotAcceptable(accept or "")


def _media_ranges(accept: str | None) -> dict[str, float] | None:
    """Return the accepted media ranges, lower-cased, with their quality (q > 0 only), or
    None when any format will do."""
    if accept is None or not accept.strip():
        return None
    accepted: dict[str, float] = {}
    for part in accept.split(","):
        media, _, params = part.partition(";")
        media = media.strip().lower()
        quality = _quality(params)
        if media and quality > 0:
            accepted[media] = max(quality, accepted.get(media, 0.0))
    return accepted


def _quality(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value.strip())
            except ValueError:
                return 0.0
    return 1.0


def pull_next(ispb: str, link_id: str) -> str:
    return f"/api/pix/{ispb}/stream/{link_id}"


def read_response(result: ReadResult, multipart: bool) -> Response:
    headers: dict[str, str | list[str]] = {"Pull-Next": pull_next(result.ispb, result.link_id)}
    if not result.bodies:
        # body=None would send the four bytes "null"; a 204 must have no body.
        return Response(body="", status_code=204, headers=headers)
    headers["Content-Type"] = JSON
    body = "[" + ",".join(result.bodies) + "]" if multipart else result.bodies[0]
    return Response(body=body, status_code=200, headers=headers)


def json_response(document: object, status: int) -> Response:
    headers: dict[str, str | list[str]] = {"Content-Type": JSON}
    return Response(
        body=json.dumps(document, ensure_ascii=False), status_code=status, headers=headers
    )


def problem_response(
    status: int, kind: str, title: str, detail: str, headers: Mapping[str, str] | None = None
) -> Response:
    document = {
        "type": PROBLEM_TYPE_PREFIX + kind,
        "title": title,
        "status": status,
        "detail": detail,
    }
    all_headers: dict[str, str | list[str]] = {"Content-Type": PROBLEM_JSON, **(headers or {})}
    return Response(
        body=json.dumps(document, ensure_ascii=False), status_code=status, headers=all_headers
    )


def error_response(error: PixStreamError, retry_after: int) -> Response:
    """Turn a domain error into its problem document."""
    status, kind, title = PROBLEMS[type(error)]
    headers: dict[str, str] = {}
    if status in (429, 503):
        headers["Retry-After"] = str(retry_after)
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="pix-stream"'
    return problem_response(status, kind, title, str(error), headers)

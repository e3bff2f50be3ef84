"""The local server's emulation of API Gateway compression and gateway responses."""

import gzip
import json

import pytest

from localdev.gateway import accepts_gzip, compress_reply, gateway_response

BODY = b'{"valor": 1.0}' * 20


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("br;q=1, GZIP;q=0.5", True),
        ("x-gzip", True),
        ("gzip;q=0", False),
        ("gzip;q=abc", False),
        ("deflate", False),
        ("", False),
        (None, False),
    ],
)
def test_accepts_gzip_reads_q_values(header: str | None, accepted: bool) -> None:
    assert accepts_gzip(header) is accepted


def test_compress_reply_gzips_large_body() -> None:
    headers: dict[str, object] = {}

    body = compress_reply(200, headers, BODY, "gzip", 100)

    assert headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(body) == BODY


@pytest.mark.parametrize(
    ("status", "body", "accept_encoding", "minimum"),
    [
        (200, BODY, "gzip", None),
        (200, BODY, "gzip", len(BODY) + 1),
        (200, BODY, "identity", 0),
        (204, b"", "gzip", 0),
        (200, b"", "gzip", 0),
    ],
)
def test_compress_reply_leaves_body_plain(
    status: int, body: bytes, accept_encoding: str, minimum: int | None
) -> None:
    headers: dict[str, object] = {}

    sent = compress_reply(status, headers, body, accept_encoding, minimum)

    assert sent == body
    assert "Content-Encoding" not in headers


@pytest.mark.parametrize(
    ("response_type", "status", "kind"),
    [
        ("UNAUTHORIZED", 401, "unauthenticated"),
        ("ACCESS_DENIED", 403, "access-denied"),
        ("MISSING_AUTHENTICATION_TOKEN", 404, "route-not-found"),
        ("AUTHORIZER_FAILURE", 503, "store-unavailable"),
    ],
)
def test_gateway_response_is_problem_document(response_type: str, status: int, kind: str) -> None:
    configured = gateway_response(response_type)

    assert configured is not None
    code, headers, body = configured
    assert code == status
    assert headers["Content-Type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["status"] == status
    assert problem["type"] == f"urn:pix-stream:problem:{kind}"


def test_unconfigured_gateway_response_is_none() -> None:
    assert gateway_response("DEFAULT_5XX") is None

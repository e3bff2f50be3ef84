"""Requests and checks that the HTTP tests share."""

import re

import httpx

MULTIPART = {"Accept": "multipart/json"}
PROBLEM_JSON = "application/problem+json"


def link_pattern(ispb: str) -> re.Pattern[str]:
    """Match a Pull-Next link of `ispb`: a 32-hex stream id and a link number."""
    return re.compile(rf"\A/api/pix/{ispb}/stream/[0-9a-f]{{32}}-[1-9][0-9]*\Z")


def create(http: httpx.Client, ispb: str, count: int) -> list[str]:
    """Create `count` test messages for `ispb`; return their endToEndIds, oldest first."""
    response = http.post(f"/api/util/msgs/{ispb}/{count}")
    assert response.status_code == 201, response.text
    ids: list[str] = response.json()["endToEndIds"]
    return ids


def start(http: httpx.Client, ispb: str, **kwargs: object) -> httpx.Response:
    return http.get(f"/api/pix/{ispb}/stream/start", **kwargs)  # type: ignore[arg-type]


def assert_problem(response: httpx.Response, status: int, named: str) -> None:
    """Check an RFC 9457 problem document whose detail names `named`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert problem["type"].startswith("urn:pix-stream:problem:")
    assert problem["title"]
    assert problem["status"] == status
    assert named in problem["detail"]

"""API keys in the prod stage: a key opens and reads only its own ISPB's streams."""

import hashlib
import random
import subprocess
from pathlib import Path

import httpx
import pytest

from localdev.dynamodb_local import free_port
from tests.integration.conftest import FAST_SETTINGS, PROD_TABLE, ApiServer, issue_api_key

PROBLEM_JSON = "application/problem+json"


def random_ispb() -> str:
    return f"{random.randrange(10**7, 10**8):08d}"


@pytest.fixture(scope="module")
def owner(prod_server: ApiServer, dynamodb_endpoint: str) -> tuple[str, str]:
    """An ISPB and a key issued for it."""
    ispb = random_ispb()
    return ispb, issue_api_key(dynamodb_endpoint, ispb)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_problem(response: httpx.Response, status: int, kind: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert problem["status"] == status
    assert problem["type"] == f"urn:pix-stream:problem:{kind}"
    assert problem["detail"]


def test_issue_key_stores_only_hash(
    owner: tuple[str, str], dynamodb: object, dynamodb_endpoint: str
) -> None:
    ispb, key = owner
    key_hash = hashlib.sha256(key.encode()).hexdigest()

    item = dynamodb.get_item(  # type: ignore[attr-defined]
        TableName=PROD_TABLE, Key={"pk": {"S": f"KEY#{key_hash}"}}, ConsistentRead=True
    )["Item"]

    assert len(key) >= 40
    assert item["ispb"]["S"] == ispb
    assert key not in str(item)


def test_issue_key_rejects_invalid_ispb(dynamodb_endpoint: str) -> None:
    with pytest.raises(subprocess.CalledProcessError) as failure:
        issue_api_key(dynamodb_endpoint, "1234567x")

    assert failure.value.returncode == 2
    assert "exactly 8 digits" in failure.value.stderr


def test_key_opens_reads_and_closes_own_stream(
    prod_http: httpx.Client, owner: tuple[str, str]
) -> None:
    ispb, key = owner

    started = prod_http.get(f"/api/pix/{ispb}/stream/start", headers=bearer(key))
    link = started.headers["pull-next"]
    read = prod_http.get(link, headers=bearer(key))
    closed = prod_http.delete(read.headers["pull-next"], headers=bearer(key))

    assert started.status_code == 204
    assert read.status_code == 204
    assert closed.status_code == 200
    assert closed.json() == {}


def test_missing_key_is_401(prod_http: httpx.Client, owner: tuple[str, str]) -> None:
    ispb, _ = owner

    response = prod_http.get(f"/api/pix/{ispb}/stream/start")

    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer not-a-key-anyone-issued",
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer " + "A" * 5000,
        "Bearer caf\u00e9",
    ],
)
def test_unknown_key_is_401(
    prod_http: httpx.Client, owner: tuple[str, str], authorization: str
) -> None:
    ispb, _ = owner

    response = prod_http.get(
        f"/api/pix/{ispb}/stream/start",
        headers=[("Authorization", authorization.encode("utf-8"))],  # type: ignore[list-item]
    )

    assert_problem(response, 401, "unauthenticated")


def test_key_of_other_ispb_is_403(
    prod_http: httpx.Client, owner: tuple[str, str], dynamodb_endpoint: str
) -> None:
    _, key = owner
    other = random_ispb()
    other_key = issue_api_key(dynamodb_endpoint, other)
    own_stream = prod_http.get(f"/api/pix/{other}/stream/start", headers=bearer(other_key))
    own_link = own_stream.headers["pull-next"]

    start = prod_http.get(f"/api/pix/{other}/stream/start", headers=bearer(key))
    read = prod_http.get(own_link, headers=bearer(key))
    close = prod_http.delete(own_link, headers=bearer(key))
    still_open = prod_http.get(own_link, headers=bearer(other_key))

    assert_problem(start, 403, "access-denied")
    assert_problem(read, 403, "access-denied")
    assert_problem(close, 403, "access-denied")
    assert still_open.status_code == 204


def test_prod_has_no_test_endpoints(prod_http: httpx.Client, owner: tuple[str, str]) -> None:
    ispb, key = owner

    for path in (f"/api/util/msgs/{ispb}/5", f"/api/pix/util/msgs/{ispb}/5/"):
        response = prod_http.post(path, headers=bearer(key))
        assert_problem(response, 404, "route-not-found")


def test_store_failure_in_authorizer_is_503(tmp_path: Path) -> None:
    # Nothing listens on this loopback port, so every DynamoDB call of the server fails fast.
    unreachable = f"http://127.0.0.1:{free_port()}"
    server = ApiServer(unreachable, PROD_TABLE, dict(FAST_SETTINGS), tmp_path / "server.log")
    server.start(stage="prod")
    try:
        response = httpx.get(
            f"{server.base_url}/api/pix/12345678/stream/start", headers=bearer("k"), timeout=30
        )
    finally:
        server.stop()

    assert_problem(response, 503, "store-unavailable")
    assert response.headers["retry-after"] == "1"


def test_dev_needs_no_key(http: httpx.Client, ispb: str) -> None:
    created = http.post(f"/api/util/msgs/{ispb}/1")

    response = http.get(f"/api/pix/{ispb}/stream/start")

    assert created.status_code == 201
    assert response.status_code == 200
    http.delete(response.headers["pull-next"])

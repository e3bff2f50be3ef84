"""Fixtures that start DynamoDB Local and the API server, and stop them by process id.

Set PIX_E2E_DYNAMODB_ENDPOINT to run the same tests against another DynamoDB endpoint
(LocalStack, for instance) instead of starting DynamoDB Local.
"""

import os
import random
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from localdev.api_server import ApiServer, local_environment
from localdev.dynamodb_local import DynamoDBLocal, local_client
from localdev.schema import PROJECT_DIR, create_table

pytestmark = pytest.mark.integration

E2E_ENDPOINT_VARIABLE = "PIX_E2E_DYNAMODB_ENDPOINT"
# Table of the prod-stage test server, apart from the dev servers' table.
PROD_TABLE = "pix-stream"

# Settings of the shared server: short enough for a fast suite, with the lease well above
# the wait so that streams do not expire while a test pauses between requests.
FAST_SETTINGS = {
    "PIX_WAIT_SECONDS": "1",
    "PIX_LEASE_SECONDS": "8",
    "PIX_POLL_MAX_SECONDS": "0.1",
}


@pytest.fixture(scope="session")
def dynamodb_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    existing = os.environ.get(E2E_ENDPOINT_VARIABLE)
    if existing:
        yield existing
        return
    log_path = tmp_path_factory.mktemp("dynamodb") / "dynamodb-local.log"
    with DynamoDBLocal(log_path=log_path) as dynamodb:
        yield dynamodb.endpoint


@pytest.fixture(scope="session")
def table_name(dynamodb_endpoint: str) -> str:
    name = f"pix-stream-test-{uuid.uuid4().hex[:8]}"
    create_table(local_client(dynamodb_endpoint), name)
    return name


@pytest.fixture(scope="session")
def start_server(
    dynamodb_endpoint: str, table_name: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., ApiServer]]:
    """Start API servers with extra settings; every one is stopped at the end of the session.

    `fast=False` starts from the contract's defaults instead of the fast test settings.
    `table` names another table than the session's, which the other servers' scheduled
    sweeps do not touch.
    """
    started: list[ApiServer] = []

    def start(
        stage: str = "dev", fast: bool = True, table: str | None = None, **settings: str
    ) -> ApiServer:
        log_path = tmp_path_factory.mktemp("server") / "server.log"
        base = FAST_SETTINGS if fast else {}
        server = ApiServer(dynamodb_endpoint, table or table_name, {**base, **settings}, log_path)
        started.append(server)
        server.start(stage)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def server(start_server: Callable[..., ApiServer]) -> ApiServer:
    """The shared API server with the fast test settings."""
    return start_server()


def issue_api_key(dynamodb_endpoint: str, ispb: str) -> str:
    """Run `python -m ops.issue_key` against the prod-stage table and return the printed key."""
    env = local_environment(dynamodb_endpoint, PROD_TABLE)
    result = subprocess.run(
        [sys.executable, "-m", "ops.issue_key", ispb],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


@pytest.fixture(scope="session")
def prod_server(start_server: Callable[..., ApiServer], dynamodb_endpoint: str) -> ApiServer:
    """A server of the prod stage: API keys required, no test-message routes."""
    create_table(local_client(dynamodb_endpoint), PROD_TABLE)
    return start_server(stage="prod", PIX_TABLE_NAME=PROD_TABLE)


@pytest.fixture
def prod_http(prod_server: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=prod_server.base_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def default_server(start_server: Callable[..., ApiServer]) -> ApiServer:
    """An API server with the contract's default settings: an 8 s wait and a 60 s lease."""
    return start_server(fast=False)


@pytest.fixture
def http(server: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        yield client


@pytest.fixture
def ispb() -> str:
    """A random ISPB, so that tests sharing the table do not see each other's messages."""
    return f"{random.randrange(10**7, 10**8):08d}"


@pytest.fixture
def dynamodb(dynamodb_endpoint: str) -> object:
    return local_client(dynamodb_endpoint)

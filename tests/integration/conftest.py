"""Fixtures that start DynamoDB Local and the API server, and stop them by process id.

Set PIX_E2E_DYNAMODB_ENDPOINT to run the same tests against another DynamoDB endpoint
(LocalStack, for instance) instead of starting DynamoDB Local.
"""

import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from localdev.dynamodb_local import (
    LOCAL_CREDENTIALS,
    LOCAL_REGION,
    DynamoDBLocal,
    free_port,
    local_client,
)
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


@dataclass
class ApiServer:
    """One `python -m localdev.server` process on a free loopback port."""

    dynamodb_endpoint: str
    table_name: str
    settings: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        env = {
            key: value for key, value in os.environ.items() if not key.startswith(("PIX_", "AWS_"))
        }
        env.update(
            {
                "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb_endpoint,
                "AWS_DEFAULT_REGION": LOCAL_REGION,
                "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
                "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"],
                "PIX_TABLE_NAME": self.table_name,
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.settings)
        return env

    def start(self, stage: str = "dev", timeout: float = 20.0) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child process keeps it open
        self.process = subprocess.Popen(
            [sys.executable, "-m", "localdev.server", "--port", str(self.port), "--stage", stage],
            cwd=PROJECT_DIR,
            env=self.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise RuntimeError(f"API server exited early; log:\n{self.log_path.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"API server did not listen on port {self.port} in {timeout} s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server's process group; SIGKILL simulates a crash."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


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
    """
    started: list[ApiServer] = []

    def start(stage: str = "dev", fast: bool = True, **settings: str) -> ApiServer:
        log_path = tmp_path_factory.mktemp("server") / "server.log"
        base = FAST_SETTINGS if fast else {}
        server = ApiServer(dynamodb_endpoint, table_name, {**base, **settings}, log_path)
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
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PIX_", "AWS_"))},
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_endpoint,
        "AWS_DEFAULT_REGION": LOCAL_REGION,
        "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"],
        "PIX_TABLE_NAME": PROD_TABLE,
    }
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

"""What the API server writes to its log: JSON lines only, metrics, and no personal data."""

import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from localdev.dynamodb_local import free_port, local_client
from localdev.schema import create_table
from tests.integration.conftest import ApiServer

MULTIPART = {"Accept": "multipart/json"}
# Long enough that a slow request on a busy machine does not outlive its own stream.
LEASE_SECONDS = 4.0

# X-Ray is on and aimed at a loopback port where nothing listens, so the run also shows
# that tracing without a daemon neither fails requests nor writes warnings.
SETTINGS = {
    "PIX_WAIT_SECONDS": "0.3",
    "PIX_LEASE_SECONDS": str(LEASE_SECONDS),
    "PIX_TRACING": "on",
    "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{free_port()}",
}


def personal_values(messages: list[dict[str, Any]]) -> set[str]:
    """Return the names and CPF/CNPJ numbers of the payers and receivers in `messages`."""
    values: set[str] = set()
    for message in messages:
        for party in (message["pagador"], message["recebedor"]):
            values.add(party["nome"])
            values.add(party["cpfCnpj"])
    return values


def warm_up(http: httpx.Client) -> None:
    """Insert messages for another ISPB until it works.

    A freshly started DynamoDB Local can take longer than the app's 2 s read timeout for
    its first PartiQL batches on a busy machine, and the app then replies 503 (as it
    should). Those replies would break the exact counts below.
    """
    other = f"{random.randrange(10**7, 10**8):08d}"
    for _ in range(5):
        if http.post(f"/api/util/msgs/{other}/25").status_code == 201:
            return
        time.sleep(1)
    pytest.fail("the API kept failing to create messages")


def run_collection(http: httpx.Client, ispb: str) -> list[dict[str, Any]]:
    """Deliver 25 messages through two streams, one of which expires; return every message."""
    assert http.post(f"/api/util/msgs/{ispb}/25").status_code == 201
    received: list[dict[str, Any]] = []

    first = http.get(f"/api/pix/{ispb}/stream/start", headers=MULTIPART)
    assert first.status_code == 200, first.text
    second = http.get(first.headers["pull-next"], headers=MULTIPART)
    assert second.status_code == 200, second.text
    repeated = http.get(first.headers["pull-next"], headers=MULTIPART)
    assert repeated.status_code == 200, repeated.text
    received += first.json() + second.json() + repeated.json()
    assert http.get("/api/pix/not-an-ispb/stream/start").status_code == 400

    # The first stream abandons its second batch; reading after the lease ends it and
    # returns that batch to pending.
    time.sleep(LEASE_SECONDS + 0.3)
    expired = http.get(second.headers["pull-next"], headers=MULTIPART)
    assert expired.status_code == 410

    link = f"/api/pix/{ispb}/stream/start"
    while True:
        reply = http.get(link, headers=MULTIPART)
        assert reply.status_code in (200, 204), reply.text
        link = reply.headers["pull-next"]
        if reply.status_code == 204:
            break
        received += reply.json()
    assert http.delete(link).status_code == 200
    return received


@dataclass
class Run:
    ispb: str
    received: list[dict[str, Any]]
    lines: list[str]


@pytest.fixture(scope="module")
def run(start_server: Callable[..., ApiServer], dynamodb_endpoint: str) -> Run:
    """One collection through its own server, whose log the tests below read."""
    ispb = f"{random.randrange(10**7, 10**8):08d}"
    # A table of its own: the other servers' scheduled sweeps would otherwise end the
    # stream this run lets expire, and the expiry would be logged by another server.
    table = f"pix-stream-logs-{uuid.uuid4().hex[:8]}"
    create_table(local_client(dynamodb_endpoint), table)
    server = start_server(table=table, **SETTINGS)
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        warm_up(http)
        received = run_collection(http, ispb)
    server.stop()
    lines = [line for line in server.log().splitlines() if line.strip()]
    return Run(ispb, received, lines)


def test_server_log_is_json_lines(run: Run) -> None:
    documents = [json.loads(line) for line in run.lines]

    assert all(isinstance(document, dict) for document in documents)
    assert [d for d in documents if d.get("level") in ("ERROR", "CRITICAL")] == []
    xray_problems = [
        d
        for d in documents
        if d.get("logger", "").startswith("aws_xray_sdk") and d.get("level") != "INFO"
    ]
    assert xray_problems == []


def test_server_log_has_no_personal_data(run: Run) -> None:
    documents = [json.loads(line) for line in run.lines]
    # Both the raw lines (with \u escapes) and the decoded text are searched.
    text = "\n".join(run.lines + [json.dumps(d, ensure_ascii=False) for d in documents])
    personal = personal_values(run.received)
    bodies = {json.dumps(m, ensure_ascii=False) for m in run.received}

    assert len({m["endToEndId"] for m in run.received}) == 25
    assert len(personal) >= 25
    assert [value for value in personal if value in text] == []
    assert [body for body in bodies if body in text] == []


def test_metric_lines_count_expiry_and_release(run: Run) -> None:
    metrics = [d for d in map(json.loads, run.lines) if "_aws" in d]
    reads = [
        m
        for m in metrics
        if m["Operation"] in ("StartStream", "ReadStream") and m["status"] in (200, 204)
    ]

    assert sum(m["MessagesDelivered"] for m in reads) == len(run.received)
    assert sum(m["StreamsExpired"] for m in metrics) == 1
    assert sum(m["MessagesReleased"] for m in metrics) == 10
    assert sum(m["EmptyPolls"] for m in reads) >= 1
    assert all(m["ispb"] == run.ispb for m in reads)
    assert all(m["WaitTime"] >= 0 for m in reads)
    assert {m["status"] for m in metrics} >= {200, 204, 400, 410}

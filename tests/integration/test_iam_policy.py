"""The functions' IAM policies grant exactly the DynamoDB calls that the code makes.

The calls are recorded from the service itself on DynamoDB Local, through every path that
touches the store: start, read, repeated read, the stream limit, close, expiry on read, and
the scheduled sweep. Each call is mapped to the IAM action and resource that DynamoDB
checks, and compared with .chalice/policy-api.json and .chalice/policy-sweeper.json.
"""

import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chalicelib.config import Settings
from chalicelib.errors import StreamGone, StreamLimitReached
from chalicelib.messages import generate_messages
from chalicelib.polling import PendingSignal
from chalicelib.store import PixStore
from chalicelib.streams import StreamService
from localdev.dynamodb_local import local_client
from localdev.schema import PROJECT_DIR

TABLE_ARN = {"Fn::GetAtt": ["PixStreamTable", "Arn"]}
INDEX_ARN_PREFIX = "${PixStreamTable.Arn}/index/"
# TransactWriteItems is authorised per item, as the single-item action of each kind.
TRANSACT_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}

Grant = tuple[str, str]


def resource_name(resource: Any) -> str:
    """Name a policy resource: "table", "index/<name>", or its JSON for anything else."""
    if resource == TABLE_ARN:
        return "table"
    substitution = resource.get("Fn::Sub", "") if isinstance(resource, dict) else ""
    if substitution.startswith(INDEX_ARN_PREFIX):
        return "index/" + substitution.removeprefix(INDEX_ARN_PREFIX)
    return json.dumps(resource)


def dynamodb_grants(policy_path: Path) -> set[Grant]:
    grants: set[Grant] = set()
    for statement in json.loads(policy_path.read_text())["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"]
        resources = statement["Resource"]
        for action in actions if isinstance(actions, list) else [actions]:
            if not action.startswith("dynamodb:"):
                continue
            for resource in resources if isinstance(resources, list) else [resources]:
                grants.add((action, resource_name(resource)))
    return grants


def required_grants(operation: str, params: dict[str, Any]) -> set[Grant]:
    """Return the IAM actions and resources that one DynamoDB API call needs."""
    if operation == "Query":
        index = params.get("IndexName")
        return {("dynamodb:Query", f"index/{index}" if index else "table")}
    if operation == "TransactWriteItems":
        return {
            (TRANSACT_ACTIONS[kind], "table") for item in params["TransactItems"] for kind in item
        }
    if operation in ("BatchExecuteStatement", "ExecuteStatement"):
        statements = params.get("Statements") or [params]
        return {
            ("dynamodb:PartiQL" + s["Statement"].split()[0].capitalize(), "table")
            for s in statements
        }
    return {(f"dynamodb:{operation}", "table")}


@dataclass
class CallRecorder:
    """Collects the grants that a DynamoDB client's calls need, while `recording`."""

    grants: set[Grant] = field(default_factory=set)
    recording: bool = True

    def __call__(self, params: dict[str, Any], model: Any, **kwargs: Any) -> None:
        if self.recording:
            self.grants |= required_grants(model.name, params)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    service: StreamService
    store: PixStore
    clock: Clock
    calls: CallRecorder
    settings: Settings

    def deadline(self) -> float:
        return time.monotonic() + self.settings.wait_seconds

    def add_messages(self, ispb: str, count: int) -> None:
        self.calls.recording = False
        self.store.insert_messages(generate_messages(ispb, count, datetime.now(UTC)))
        self.calls.recording = True


@pytest.fixture
def harness(dynamodb_endpoint: str, table_name: str) -> Iterator[Harness]:
    client = local_client(dynamodb_endpoint)
    calls = CallRecorder()
    client.meta.events.register("before-parameter-build.dynamodb", calls)
    settings = Settings.from_env(
        {}, table_name=table_name, wait_seconds=0.2, lease_seconds=5.0, poll_max_seconds=0.05
    )
    clock = Clock()
    store = PixStore(client, table_name, clock, settings.retention_seconds)
    service = StreamService(store, settings, PendingSignal(), clock=clock, monotonic=time.monotonic)
    yield Harness(service, store, clock, calls, settings)


def new_ispb() -> str:
    return f"{secrets.randbelow(9 * 10**7) + 10**7:08d}"


def exercise_api(h: Harness) -> None:
    ispb = new_ispb()
    h.add_messages(ispb, 30)
    first = h.service.start(ispb, 10, h.deadline())
    second = h.service.read(ispb, first.link_id, 10, h.deadline())
    h.service.read(ispb, first.link_id, 10, h.deadline())  # repeated after a lost reply
    h.service.close(ispb, second.link_id)

    opened = [h.service.start(ispb, 1, h.deadline()) for _ in range(h.settings.stream_limit)]
    with pytest.raises(StreamLimitReached):
        h.service.start(ispb, 1, h.deadline())
    h.clock.now += h.settings.lease_seconds + 1
    with pytest.raises(StreamGone):
        h.service.read(ispb, opened[0].link_id, 1, h.deadline())


def exercise_sweeper(h: Harness) -> None:
    ispb = new_ispb()
    h.add_messages(ispb, 3)
    h.calls.recording = False
    h.service.start(ispb, 10, h.deadline())
    h.clock.now += h.settings.lease_seconds + 1
    h.calls.recording = True
    assert h.service.sweep() >= 1


def test_api_policy_grants_exactly_the_api_calls(harness: Harness) -> None:
    exercise_api(harness)

    granted = dynamodb_grants(PROJECT_DIR / ".chalice" / "policy-api.json")

    assert harness.calls.grants - granted == set()
    assert granted - harness.calls.grants == set()


def test_sweeper_policy_grants_exactly_the_sweep_calls(harness: Harness) -> None:
    exercise_sweeper(harness)

    granted = dynamodb_grants(PROJECT_DIR / ".chalice" / "policy-sweeper.json")

    assert harness.calls.grants - granted == set()
    assert granted - harness.calls.grants == set()


def test_api_policy_cannot_insert_messages(harness: Harness) -> None:
    # The prod stage serves no test endpoints, so nothing in it creates messages.
    harness.store.insert_messages(generate_messages(new_ispb(), 1, datetime.now(UTC)))

    granted = dynamodb_grants(PROJECT_DIR / ".chalice" / "policy-api.json")

    assert ("dynamodb:PartiQLInsert", "table") in harness.calls.grants
    assert ("dynamodb:PartiQLInsert", "table") not in granted

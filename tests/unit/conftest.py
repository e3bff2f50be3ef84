"""Fixtures for the unit tests: a moto DynamoDB table built from infra/table.json."""

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.store import PixStore
from localdev.schema import create_table

RETENTION_SECONDS = 7 * 86400


class FakeClock:
    """A wall clock that tests move by hand, in seconds since the epoch."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="session")
def dynamodb() -> Iterator[Any]:
    """A moto DynamoDB client, shared by the session because building a client is slow."""
    with pytest.MonkeyPatch.context() as environment:
        for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
            environment.delenv(name, raising=False)
        environment.setenv("AWS_ACCESS_KEY_ID", "testing")
        environment.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        with mock_aws():
            yield boto3.client("dynamodb", region_name="us-east-1")


@pytest.fixture
def table_name(dynamodb: Any) -> Iterator[str]:
    """A fresh table per test, created from the CloudFormation template in infra/."""
    name = f"pix-stream-unit-{uuid.uuid4().hex[:8]}"
    create_table(dynamodb, name)
    yield name
    dynamodb.delete_table(TableName=name)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(dynamodb: Any, table_name: str, clock: FakeClock) -> PixStore:
    return PixStore(dynamodb, table_name, clock, RETENTION_SECONDS)

"""Runtime.insert_generated on DynamoDB Local, including a batch that botocore sends twice."""

import time
from typing import Any

import pytest

from chalicelib.config import Settings
from chalicelib.runtime import build_runtime
from chalicelib.store import PixStore


class ReplayingClient:
    """A DynamoDB client that sends every BatchExecuteStatement twice and returns the second reply.

    That is what botocore does when the first attempt was applied but its reply timed out.
    """

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def batch_execute_statement(self, **kwargs: Any) -> Any:
        self._client.batch_execute_statement(**kwargs)
        return self._client.batch_execute_statement(**kwargs)


@pytest.mark.parametrize("count", [3, 60])
def test_replayed_insert_reports_every_message(
    dynamodb: Any, table_name: str, ispb: str, count: int
) -> None:
    settings = Settings.from_env({}, table_name=table_name)
    runtime = build_runtime(settings, client=ReplayingClient(dynamodb))

    created = runtime.insert_generated(ispb, count)
    stored = PixStore(dynamodb, table_name, time.time, 3600).pending_messages(ispb, 1000)

    assert len(created) == count
    assert created == [entry.end_to_end_id for entry in stored]

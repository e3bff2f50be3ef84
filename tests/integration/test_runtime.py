"""Runtime.insert_generated on DynamoDB Local, including a batch that botocore sends twice."""

import time
from typing import Any

import pytest

from chalicelib.config import Settings
from chalicelib.runtime import build_runtime
from chalicelib.store import PixStore
from tests.integration.fakes import ReplayingClient


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


def test_replayed_commit_returns_messages(dynamodb: Any, table_name: str, ispb: str) -> None:
    settings = Settings.from_env({}, table_name=table_name)
    replaying = ReplayingClient(dynamodb, frozenset({"update_item"}))
    runtime = build_runtime(settings, client=replaying)
    created = runtime.insert_generated(ispb, 2)

    result = runtime.streams.start(ispb, 10, time.monotonic() + 1)
    repeated = runtime.streams.read(ispb, result.link_id, 10, time.monotonic() + 1)

    assert result.end_to_end_ids == tuple(created)
    assert result.link == 2
    assert repeated.end_to_end_ids == ()

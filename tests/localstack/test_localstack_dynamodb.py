"""DynamoDB behaviour that the store relies on, checked on the endpoint `make e2e` starts.

LocalStack forwards DynamoDB requests to DynamoDB Local through its own request parser and
serializer, with one database per account and region. These tests check that conditional
writes and PartiQL batch errors survive that path. Skipped unless PIX_E2E_DYNAMODB_ENDPOINT
is set.
"""

import os
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

ENDPOINT_VARIABLE = "PIX_E2E_DYNAMODB_ENDPOINT"
ENDPOINT = os.environ.get(ENDPOINT_VARIABLE)

pytestmark = [
    pytest.mark.localstack,
    pytest.mark.skipif(not ENDPOINT, reason=f"{ENDPOINT_VARIABLE} is not set"),
]

CONDITIONAL_UPDATE = 'UPDATE "{table}" SET claim=? WHERE pk=? AND state=?'


@pytest.fixture(scope="module")
def client() -> Any:
    # Emulators accept any credentials; fixed ones keep real ones from being sent.
    return boto3.client(
        "dynamodb",
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


@pytest.fixture
def table(client: Any) -> Iterator[str]:
    name = f"pix-e2e-{uuid.uuid4().hex[:12]}"
    client.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=name)
    yield name
    client.delete_table(TableName=name)


def put_pending(client: Any, table: str, *keys: str) -> None:
    for key in keys:
        client.put_item(TableName=table, Item={"pk": {"S": key}, "state": {"S": "pending"}})


def get_item(client: Any, table: str, key: str) -> dict[str, Any]:
    item: dict[str, Any] = client.get_item(
        TableName=table, Key={"pk": {"S": key}}, ConsistentRead=True
    )["Item"]
    return item


def claim_request(table: str, key: str, expected_state: str) -> dict[str, Any]:
    return {
        "TableName": table,
        "Key": {"pk": {"S": key}},
        "UpdateExpression": "SET #claim = :claim",
        "ConditionExpression": "#state = :state",
        "ExpressionAttributeNames": {"#claim": "claim", "#state": "state"},
        "ExpressionAttributeValues": {
            ":claim": {"S": "stream-1"},
            ":state": {"S": expected_state},
        },
    }


def test_conditional_update_applies_on_match(client: Any, table: str) -> None:
    put_pending(client, table, "m1")

    client.update_item(**claim_request(table, "m1", expected_state="pending"))

    assert get_item(client, table, "m1")["claim"] == {"S": "stream-1"}


def test_conditional_update_rejects_failed_condition(client: Any, table: str) -> None:
    put_pending(client, table, "m1")

    with pytest.raises(client.exceptions.ConditionalCheckFailedException):
        client.update_item(**claim_request(table, "m1", expected_state="delivered"))

    assert "claim" not in get_item(client, table, "m1")


def test_partiql_batch_reports_statement_error(client: Any, table: str) -> None:
    put_pending(client, table, "m1", "m2")
    statement = CONDITIONAL_UPDATE.format(table=table)

    response = client.batch_execute_statement(
        Statements=[
            {"Statement": statement, "Parameters": [{"S": "s1"}, {"S": "m1"}, {"S": "pending"}]},
            {"Statement": statement, "Parameters": [{"S": "s1"}, {"S": "m2"}, {"S": "gone"}]},
        ]
    )

    first, second = response["Responses"]
    assert "Error" not in first
    assert second["Error"]["Code"] == "ConditionalCheckFailed"
    assert get_item(client, table, "m1")["claim"] == {"S": "s1"}
    assert "claim" not in get_item(client, table, "m2")

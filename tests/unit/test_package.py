"""The packaged prod template: one stack with the API, both functions and the table."""

import json
from typing import Any

import pytest

from app import LAMBDA_MARGIN_SECONDS
from chalicelib.config import GATEWAY_TIMEOUT_SECONDS, Settings
from localdev.package import offline_environment, package
from localdev.schema import PROJECT_DIR

TABLE_REF = {"Ref": "PixStreamTable"}


@pytest.fixture(scope="module")
def resources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    template_path = package("prod", tmp_path_factory.mktemp("package") / "out")
    template: dict[str, Any] = json.loads(template_path.read_text())
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    return dict(template["Resources"])


def policy_document(resources: dict[str, Any], role: str) -> Any:
    return resources[role]["Properties"]["Policies"][0]["PolicyDocument"]


def test_template_holds_table_with_indexes_ttl_and_recovery(resources: dict[str, Any]) -> None:
    table = resources["PixStreamTable"]["Properties"]

    assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == {"queue", "open-streams"}
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["BillingMode"] == "PAY_PER_REQUEST"


def test_sweeper_runs_every_minute(resources: dict[str, Any]) -> None:
    events = resources["SweepExpiredStreams"]["Properties"]["Events"]

    assert [e["Properties"]["Schedule"] for e in events.values()] == ["rate(1 minute)"]


def test_functions_use_hand_written_policies(resources: dict[str, Any]) -> None:
    api_policy = json.loads((PROJECT_DIR / ".chalice" / "policy-api.json").read_text())
    sweeper_policy = json.loads((PROJECT_DIR / ".chalice" / "policy-sweeper.json").read_text())
    api_role = resources["APIHandler"]["Properties"]["Role"]["Fn::GetAtt"][0]
    sweeper_role = resources["SweepExpiredStreams"]["Properties"]["Role"]["Fn::GetAtt"][0]

    assert policy_document(resources, api_role) == api_policy
    assert policy_document(resources, sweeper_role) == sweeper_policy
    assert "DefaultRole" not in resources


def test_functions_read_the_table_name_from_the_stack(resources: dict[str, Any]) -> None:
    for name in ("APIHandler", "SweepExpiredStreams"):
        variables = resources[name]["Properties"]["Environment"]["Variables"]

        assert variables["PIX_TABLE_NAME"] == TABLE_REF
        assert variables["PIX_TEST_ENDPOINTS"] == "off"


def test_api_timeout_fits_long_poll_and_gateway(resources: dict[str, Any]) -> None:
    api = resources["APIHandler"]["Properties"]
    wait = Settings().wait_seconds

    assert wait + LAMBDA_MARGIN_SECONDS < api["Timeout"] < GATEWAY_TIMEOUT_SECONDS
    assert api["Tracing"] == "Active"
    assert resources["RestAPI"]["Properties"]["MinimumCompressionSize"] > 0


def test_packaging_uses_no_real_credentials() -> None:
    env = offline_environment({"AWS_PROFILE": "production", "AWS_SESSION_TOKEN": "token"})

    assert "AWS_PROFILE" not in env
    assert "AWS_SESSION_TOKEN" not in env
    assert env["AWS_EC2_METADATA_DISABLED"] == "true"
    assert env["AWS_DEFAULT_REGION"]

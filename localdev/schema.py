"""Create the DynamoDB table from the CloudFormation template in infra/.

The template is the only definition of the schema; local runs and tests read it here,
and deployments read it through CloudFormation.
"""

import json
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
TABLE_TEMPLATE = PROJECT_DIR / "infra" / "table.json"
TABLE_RESOURCE = "PixStreamTable"

# Properties that only exist in CloudFormation or need a separate API call.
_CREATE_TABLE_FIELDS = (
    "AttributeDefinitions",
    "KeySchema",
    "GlobalSecondaryIndexes",
    "BillingMode",
)


def table_properties(template_path: Path = TABLE_TEMPLATE) -> dict[str, Any]:
    template = json.loads(template_path.read_text())
    properties: dict[str, Any] = template["Resources"][TABLE_RESOURCE]["Properties"]
    return properties


def create_table_request(table_name: str, template_path: Path = TABLE_TEMPLATE) -> dict[str, Any]:
    """Return the CreateTable arguments that the template's table resource describes."""
    properties = table_properties(template_path)
    request = {field: properties[field] for field in _CREATE_TABLE_FIELDS if field in properties}
    request["TableName"] = table_name
    return request


def create_table(client: Any, table_name: str, template_path: Path = TABLE_TEMPLATE) -> bool:
    """Create the table and enable its TTL; return False if it already existed."""
    try:
        client.create_table(**create_table_request(table_name, template_path))
    except client.exceptions.ResourceInUseException:
        return False
    client.get_waiter("table_exists").wait(
        TableName=table_name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 150}
    )
    ttl = table_properties(template_path).get("TimeToLiveSpecification")
    if ttl:
        client.update_time_to_live(TableName=table_name, TimeToLiveSpecification=ttl)
    return True

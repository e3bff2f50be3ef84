"""`make run`: DynamoDB Local, the table from infra/, and the API on 127.0.0.1:PORT.

When AWS_ENDPOINT_URL_DYNAMODB is already set, that DynamoDB is used instead of starting
DynamoDB Local, and the table is created there if it does not exist.
"""

import argparse
import logging
import os
from pathlib import Path

from chalicelib.config import Settings
from chalicelib.logs import use_json_logs
from localdev.dynamodb_local import LOCAL_CREDENTIALS, LOCAL_REGION, DynamoDBLocal, local_client
from localdev.schema import PROJECT_DIR, create_table
from localdev.server import serve

logger = logging.getLogger("localdev.run")

ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL_DYNAMODB"


def use_local_aws_environment(endpoint: str) -> None:
    """Point boto3 at `endpoint` with the region and dummy credentials a local store takes."""
    os.environ[ENDPOINT_VARIABLE] = endpoint
    os.environ.setdefault("AWS_DEFAULT_REGION", LOCAL_REGION)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", LOCAL_CREDENTIALS["aws_access_key_id"])
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", LOCAL_CREDENTIALS["aws_secret_access_key"])


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the API locally on DynamoDB Local.")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument(
        "--dynamodb-port",
        type=int,
        default=int(os.environ.get("DYNAMODB_PORT", "8001")),
        help="port for DynamoDB Local",
    )
    args = parser.parse_args()
    use_json_logs()

    table = Settings.from_env().table_name
    existing = os.environ.get(ENDPOINT_VARIABLE)
    dynamodb = None
    if existing:
        logger.info("using the DynamoDB at %s (from %s)", existing, ENDPOINT_VARIABLE)
        endpoint = existing
    else:
        log_path = Path(PROJECT_DIR / ".run" / "dynamodb-local.log")
        log_path.parent.mkdir(exist_ok=True)
        dynamodb = DynamoDBLocal(port=args.dynamodb_port, log_path=log_path)
        dynamodb.start()
        endpoint = dynamodb.endpoint
        logger.info("using DynamoDB Local at %s, in memory: data is lost when it stops", endpoint)
    try:
        use_local_aws_environment(endpoint)
        created = create_table(local_client(endpoint), table)
        logger.info("table %s %s", table, "created" if created else "already exists")
        serve("127.0.0.1", args.port, "dev")
    finally:
        if dynamodb is not None:
            dynamodb.stop()


if __name__ == "__main__":
    main()

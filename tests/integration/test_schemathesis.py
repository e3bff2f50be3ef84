"""Schemathesis fuzzes the served OpenAPI description against local servers."""

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.integration.conftest import ApiServer, issue_api_key

# Bounded so that both runs together take about a minute on 2 shared cores.
MAX_EXAMPLES = 15
SEED = 20261204
RUN_TIMEOUT_SECONDS = 240
# The command-line script installed beside this interpreter.
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# The ISPB whose key the prod run sends; requests for any other ISPB must get 403.
KEY_ISPB = "12345678"


def run_schemathesis(
    server: ApiServer, work_dir: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    """Run Schemathesis in `work_dir`, where it keeps its cache."""
    command = [
        str(SCHEMATHESIS),
        "run",
        f"{server.base_url}/api/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--generation-database",
        "none",
        # Creating 1,000 test messages takes several seconds on a busy machine.
        "--request-timeout",
        "60",
        "--no-color",
        *extra,
    ]
    return subprocess.run(
        command,
        cwd=work_dir,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )


def test_schemathesis_dev_stage(start_server: Callable[..., ApiServer], tmp_path: Path) -> None:
    # A short wait keeps long polls on empty streams from dominating the run.
    server = start_server(PIX_WAIT_SECONDS="0.2", PIX_LEASE_SECONDS="5")

    result = run_schemathesis(server, tmp_path)

    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]


def test_schemathesis_prod_stage(
    prod_server: ApiServer, dynamodb_endpoint: str, tmp_path: Path
) -> None:
    key = issue_api_key(dynamodb_endpoint, KEY_ISPB)

    # With a key, the ignored_auth check also sends requests without it and expects 401.
    result = run_schemathesis(prod_server, tmp_path, "--header", f"Authorization: Bearer {key}")

    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]

"""Schemathesis fuzzes the served OpenAPI description against a local server."""

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.integration.conftest import ApiServer

# Bounded so that the run takes about a minute on 2 shared cores.
MAX_EXAMPLES = 15
SEED = 20261204
RUN_TIMEOUT_SECONDS = 240
# The command-line script installed beside this interpreter.
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def test_schemathesis_finds_no_violation(
    start_server: Callable[..., ApiServer], tmp_path: object
) -> None:
    # A short wait keeps long polls on empty streams from dominating the run.
    server = start_server(PIX_WAIT_SECONDS="0.2", PIX_LEASE_SECONDS="5")
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
        "--request-timeout",
        "10",
        "--no-color",
    ]

    result = subprocess.run(
        command, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS, check=False
    )

    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]

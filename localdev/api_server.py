"""One `python -m localdev.server` process on a free loopback port, for tests and benchmarks.

The process runs in its own session, so `stop()` ends it and any children by process group
id, and its standard output and error go to a log file.
"""

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from localdev.dynamodb_local import LOCAL_CREDENTIALS, LOCAL_REGION, free_port
from localdev.schema import PROJECT_DIR

logger = logging.getLogger(__name__)


def local_environment(
    dynamodb_endpoint: str, table_name: str, settings: dict[str, str] | None = None
) -> dict[str, str]:
    """Return an environment for the app on a local DynamoDB endpoint and table.

    It copies this process's environment without its PIX_* and AWS_* variables, so a
    shell's settings do not reach the app. Then it adds the endpoint, its credentials, the
    table and `settings`.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PIX_", "AWS_"))}
    env.update(
        {
            "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_endpoint,
            "AWS_DEFAULT_REGION": LOCAL_REGION,
            "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"],
            "PIX_TABLE_NAME": table_name,
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(settings or {})
    return env


@dataclass
class ApiServer:
    """An API server on `table_name` at `dynamodb_endpoint`, with extra PIX_* `settings`."""

    dynamodb_endpoint: str
    table_name: str
    settings: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, stage: str = "dev", timeout: float = 20.0) -> None:
        """Start the server and return once it accepts connections."""
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child process keeps it open
        self.process = subprocess.Popen(
            [sys.executable, "-m", "localdev.server", "--port", str(self.port), "--stage", stage],
            cwd=PROJECT_DIR,
            env=local_environment(self.dynamodb_endpoint, self.table_name, self.settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise RuntimeError(f"API server exited early; log:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    logger.info("API server on %s (pid %d)", self.base_url, self.process.pid)
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"API server did not listen on port {self.port} in {timeout} s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server's process group; SIGKILL simulates a crash."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        logger.info("API server on port %d stopped", self.port)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

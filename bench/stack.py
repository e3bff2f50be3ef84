"""A private stack for one benchmark run: DynamoDB Local, the table, and API server processes.

Everything listens on free loopback ports, and `stop()` ends exactly the processes that
`start()` started, by their process group id.
"""

import logging
import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from localdev.dynamodb_local import (
    LOCAL_CREDENTIALS,
    LOCAL_REGION,
    DynamoDBLocal,
    free_port,
    local_client,
    stop_process_group,
)
from localdev.schema import PROJECT_DIR, create_table

logger = logging.getLogger(__name__)

# The contract's defaults, spelled out so that a shell's PIX_* variables cannot change a run.
BENCH_SETTINGS = {
    "PIX_WAIT_SECONDS": "8",
    "PIX_STREAM_LIMIT": "6",
    "PIX_BATCH_SIZE": "10",
    "PIX_LEASE_SECONDS": "60",
    "PIX_TEST_ENDPOINTS": "on",
}


@dataclass
class ServerProcess:
    """One `python -m localdev.server` process whose standard output goes to `log_path`."""

    environment: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        command = [sys.executable, "-m", "localdev.server", "--port", str(self.port)]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=PROJECT_DIR,
                env=self.environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise RuntimeError(f"the API server exited early; see {self.log_path}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    logger.info("API server on %s (pid %d)", self.base_url, self.process.pid)
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the API server did not listen on port {self.port} in {timeout} s")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and stop_process_group(process):
            logger.info("API server on port %d stopped", self.port)


class BenchStack:
    """DynamoDB Local, a fresh table and `server_count` API servers sharing it.

    The first server serves the collectors. The second plays another Lambda instance:
    messages created through it reach the first server's waiting streams only through the
    store, as they would on AWS.
    """

    def __init__(self, run_dir: Path, settings: dict[str, str], server_count: int = 2) -> None:
        self.run_dir = run_dir
        self.table_name = f"pix-stream-bench-{uuid.uuid4().hex[:8]}"
        self._settings = settings
        self._server_count = server_count
        self.dynamodb = DynamoDBLocal(log_path=run_dir / "dynamodb-local.log")
        self.servers: list[ServerProcess] = []

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PIX_", "AWS_"))}
        env.update(
            {
                "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb.endpoint,
                "AWS_DEFAULT_REGION": LOCAL_REGION,
                "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
                "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"],
            }
        )
        env.update(BENCH_SETTINGS)
        env.update(self._settings)
        env.update({"PIX_TABLE_NAME": self.table_name, "PYTHONUNBUFFERED": "1"})
        return env

    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.dynamodb.start()
        create_table(local_client(self.dynamodb.endpoint), self.table_name)
        environment = self._environment()
        for number in range(self._server_count):
            server = ServerProcess(environment, self.run_dir / f"server-{number}.log")
            self.servers.append(server)
            server.start()

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        self.dynamodb.stop()

    @property
    def log_paths(self) -> list[Path]:
        return [server.log_path for server in self.servers]

    def __enter__(self) -> "BenchStack":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

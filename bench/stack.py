"""A private stack for one benchmark run: DynamoDB Local, the table, and API server processes.

Everything listens on free loopback ports, and `stop()` ends exactly the processes that
`start()` started, by their process group id.
"""

import uuid
from pathlib import Path

from localdev.api_server import ApiServer
from localdev.dynamodb_local import DynamoDBLocal, local_client
from localdev.schema import create_table

# The contract's defaults, spelled out so that a shell's PIX_* variables cannot change a run.
BENCH_SETTINGS = {
    "PIX_WAIT_SECONDS": "8",
    "PIX_STREAM_LIMIT": "6",
    "PIX_BATCH_SIZE": "10",
    "PIX_LEASE_SECONDS": "60",
    "PIX_TEST_ENDPOINTS": "on",
}


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
        self.servers: list[ApiServer] = []

    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.dynamodb.start()
        create_table(local_client(self.dynamodb.endpoint), self.table_name)
        settings = {**BENCH_SETTINGS, **self._settings}
        for number in range(self._server_count):
            log_path = self.run_dir / f"server-{number}.log"
            server = ApiServer(self.dynamodb.endpoint, self.table_name, settings, log_path)
            self.servers.append(server)
            server.start(timeout=30.0)

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

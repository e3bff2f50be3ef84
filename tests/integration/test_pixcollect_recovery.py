"""pix-collect as a subprocess against chalice local and DynamoDB Local.

Each test starts its own API server, because the tests need lease times other than the
shared server's.
"""

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from localdev.schema import PROJECT_DIR
from tests.integration.conftest import ApiServer

pytestmark = pytest.mark.integration

MULTIPART = {"Accept": "multipart/json"}
# Lines the first run must write before it is stopped. That is enough for every stream to
# hold a batch, and far fewer than the messages created, so the stop lands mid-run.
LINES_BEFORE_STOP = 30
# Messages per create request, and create requests before the setup gives up.
CREATE_BATCH = 200
CREATE_ATTEMPTS = 20
# Seconds without a new line after which the collector is taken to have drained the ISPB.
# It must exceed the server's long-poll wait (1 s in the test settings).
QUIET_SECONDS = 3
# The collector's default number of streams, which is also the server's limit per ISPB.
STREAMS = 6


class CollectorProcess:
    """One ``python -m pixcollect`` process, its output file and its log."""

    def __init__(self, server: ApiServer, ispb: str, output: Path, log: Path, *options: str):
        self.log_path = log
        with log.open("ab") as log_file:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pixcollect",
                    "--base-url",
                    server.base_url,
                    "--ispb",
                    ispb,
                    "--output",
                    str(output),
                    *options,
                ],
                cwd=PROJECT_DIR,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log_file,
            )

    def stop(self, signum: int) -> int:
        """Send ``signum``, wait for the exit and return the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def create_messages(server: ApiServer, ispb: str, count: int) -> set[str]:
    """Create ``count`` messages in requests of up to CREATE_BATCH, retrying each 503.

    Returns the ids that the responses list. A request that failed with 503 may still have
    stored some messages, which no response lists.
    """
    ids: set[str] = set()
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        for attempt in range(CREATE_ATTEMPTS):
            if len(ids) >= count:
                break
            number = min(CREATE_BATCH, count - len(ids))
            response = http.post(f"/api/util/msgs/{ispb}/{number}")
            if response.status_code == 503 and attempt + 1 < CREATE_ATTEMPTS:
                time.sleep(float(response.headers.get("retry-after", "1")))
                continue
            assert response.status_code == 201, response.text
            ids.update(response.json()["endToEndIds"])
    assert len(ids) >= count
    return ids


def read_messages(path: Path) -> list[dict[str, Any]]:
    """Return every complete line's message, skipping a line cut off by SIGKILL."""
    if not path.exists():
        return []
    messages = []
    for line in path.read_text().splitlines():
        try:
            messages.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return messages


def read_ids(path: Path) -> list[str]:
    return [message["endToEndId"] for message in read_messages(path)]


def wait_until(condition: Callable[[], bool], timeout: float, collector: CollectorProcess) -> None:
    """Poll ``condition`` every 50 ms, and fail with the collector's log on timeout."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s; collector log:\n{collector.log()}")
        time.sleep(0.05)


def wait_until_drained(collector: CollectorProcess, output: Path, created: set[str]) -> None:
    """Wait until every id in ``created`` is written, then until no line comes for QUIET_SECONDS.

    The quiet period lets the collector also write messages that were stored by a create
    request that failed.
    """
    wait_until(lambda: set(read_ids(output)) >= created, 120, collector)
    count = len(read_ids(output))
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < QUIET_SECONDS:
        time.sleep(0.1)
        if len(read_ids(output)) != count:
            count = len(read_ids(output))
            quiet_since = time.monotonic()


def first_run_is_busy(collector: CollectorProcess, output: Path) -> bool:
    """Return True once every stream is open and the output has LINES_BEFORE_STOP lines."""
    streams_open = collector.log().count(": opened") >= STREAMS
    return streams_open and len(read_ids(output)) >= LINES_BEFORE_STOP


def assert_nothing_pending_and_slots_free(server: ApiServer, ispb: str) -> None:
    """Open and close one stream. A 204 shows that no message is left and a slot was free."""
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        response = http.get(f"/api/pix/{ispb}/stream/start", headers=MULTIPART)
        assert response.status_code == 204, response.text
        assert http.delete(response.headers["pull-next"]).status_code == 200


def stop_mid_run(
    server: ApiServer, ispb: str, output: Path, log: Path, signum: int
) -> tuple[CollectorProcess, int]:
    """Run a collector until it is busy, stop it with ``signum``, and return it and its status."""
    collector = CollectorProcess(server, ispb, output, log)
    try:
        wait_until(lambda: first_run_is_busy(collector, output), 60, collector)
    finally:
        status = collector.stop(signum)
    return collector, status


def run_to_completion(
    server: ApiServer, ispb: str, output: Path, log: Path, created: set[str]
) -> tuple[CollectorProcess, int]:
    """Run a collector until it has drained the ISPB, then stop it with SIGTERM."""
    collector = CollectorProcess(server, ispb, output, log)
    try:
        wait_until_drained(collector, output, created)
    finally:
        status = collector.stop(signal.SIGTERM)
    return collector, status


def assert_every_message_once(output: Path, created: set[str]) -> None:
    """Check the output. assert_nothing_pending_and_slots_free checks that nothing is missing."""
    ids = read_ids(output)
    assert set(ids) >= created
    assert len(ids) == len(set(ids)), "a message was written twice"


def test_sigkill_then_rerun_writes_every_message(
    start_server: Callable[..., ApiServer], ispb: str, tmp_path: Path
) -> None:
    # Short, but long enough that streams do not expire during their own requests on a
    # busy machine.
    server = start_server(PIX_LEASE_SECONDS="10")
    created = create_messages(server, ispb, 600)
    output = tmp_path / "messages.jsonl"

    stop_mid_run(server, ispb, output, tmp_path / "first.log", signal.SIGKILL)
    assert len(set(read_ids(output))) < len(created), "the first run finished before the kill"

    # The killed run's streams keep their slots until the lease expires, so until then the
    # second run's starts get 429. Then their unconfirmed batches return to pending.
    second, status = run_to_completion(server, ispb, output, tmp_path / "second.log", created)

    assert status == 0, second.log()
    assert_every_message_once(output, created)
    assert_nothing_pending_and_slots_free(server, ispb)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_frees_slots_for_rerun(
    signum: signal.Signals, start_server: Callable[..., ApiServer], ispb: str, tmp_path: Path
) -> None:
    # The lease is far longer than the test, so only the DELETEs on the signal can free the
    # slots and return the messages of cancelled reads in time.
    server = start_server(PIX_LEASE_SECONDS="300")
    created = create_messages(server, ispb, 600)
    output = tmp_path / "messages.jsonl"

    first, first_status = stop_mid_run(server, ispb, output, tmp_path / "first.log", signum)
    assert first_status == 0, first.log()
    assert len(set(read_ids(output))) < len(created), f"the first run finished before {signum.name}"
    assert first.log().count(": closed") == STREAMS, first.log()

    second, second_status = run_to_completion(
        server, ispb, output, tmp_path / "second.log", created
    )

    assert second_status == 0, second.log()
    assert "returned 429" not in second.log()
    assert_every_message_once(output, created)
    assert_nothing_pending_and_slots_free(server, ispb)


def test_single_format_stops_at_max_messages(server: ApiServer, ispb: str, tmp_path: Path) -> None:
    created = create_messages(server, ispb, 5)
    output = tmp_path / "messages.jsonl"

    collector = CollectorProcess(
        server,
        ispb,
        output,
        tmp_path / "collector.log",
        "--single",
        "--streams",
        "1",
        "--max-messages",
        "5",
    )
    status = collector.process.wait(timeout=60)

    assert status == 0, collector.log()
    assert set(read_ids(output)) == created
    assert len(read_ids(output)) == 5
    assert_nothing_pending_and_slots_free(server, ispb)

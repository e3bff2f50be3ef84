"""StreamService in the test process, on DynamoDB Local, with a settable clock and store faults.

These helpers let tests reach every store call without HTTP in between: `FaultInjector`
makes a chosen call of the boto3 client fail the way DynamoDB or the network can, and
`FakeClock` moves leases forward without sleeping.
"""

import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError

from chalicelib.config import Settings
from chalicelib.messages import generate_messages
from chalicelib.polling import PendingSignal
from chalicelib.runtime import Runtime
from chalicelib.store import PixStore, counter_key, message_key, stream_key
from chalicelib.streams import ReadResult, StreamService
from localdev.dynamodb_local import local_client
from localdev.schema import create_table

THROTTLE = "throttle"
LOST_REPLY = "lost_reply"
REPEAT = "repeat"
CRASH_BEFORE = "crash_before"
CRASH_AFTER = "crash_after"
FAULTS = (THROTTLE, LOST_REPLY, REPEAT, CRASH_BEFORE, CRASH_AFTER)


class ProcessCrash(Exception):
    """The server process died at this point: nothing after it ran."""


class FakeClock:
    """Wall-clock time that only moves when a test advances it."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FaultInjector:
    """Make one chosen call of a boto3 DynamoDB client fail, counting calls from 1.

    The faults, each as seen by the caller of the client:

    - THROTTLE: DynamoDB rejects the call with ProvisionedThroughputExceededException, as
      after botocore's own retries ran out.
    - LOST_REPLY: the call applies, then its reply is lost (a read timeout).
    - REPEAT: the call applies twice, as when botocore repeats a call whose reply was lost.
    - CRASH_BEFORE, CRASH_AFTER: the process dies before the call is sent, or after it
      applied; `ProcessCrash` is raised, which no production code catches.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls = 0
        self.operations: list[str] = []
        self._armed: tuple[int, str] | None = None
        self.fired = False
        client.meta.events.register("before-call.dynamodb", self._before_call)
        client.meta.events.register("after-call.dynamodb", self._after_call)

    def arm(self, call_number: int, fault: str) -> None:
        """Make call number `call_number`, counted from now, fail with `fault`."""
        self.calls = 0
        self.operations = []
        self.fired = False
        self._armed = (call_number, fault)

    def disarm(self) -> None:
        self._armed = None

    def _fault_now(self) -> str | None:
        if self._armed is None or self._armed[0] != self.calls:
            return None
        self.fired = True
        return self._armed[1]

    def _before_call(self, model: Any, params: Any, context: Any, **kwargs: Any) -> Any:
        self.calls += 1
        self.operations.append(model.name)
        fault = self._fault_now()
        if fault == THROTTLE:
            return _throttled_reply()
        if fault == CRASH_BEFORE:
            raise ProcessCrash(f"crash before {model.name}")
        if fault == REPEAT:
            # Send the same request once more; the normal send that follows is the repeat.
            self._client._make_request(model, params, context)
        return None

    def _after_call(self, model: Any, **kwargs: Any) -> None:
        if self._armed is None or self._armed[0] != self.calls:
            return
        fault = self._armed[1]
        if fault == LOST_REPLY:
            raise ReadTimeoutError(endpoint_url="http://dynamodb.injected")
        if fault == CRASH_AFTER:
            raise ProcessCrash(f"crash after {model.name}")


def _throttled_reply() -> tuple[AWSResponse, dict[str, Any]]:
    http = AWSResponse("http://dynamodb.injected", 400, {}, None)
    parsed = {
        "Error": {
            "Code": "ProvisionedThroughputExceededException",
            "Message": "injected throttling",
        },
        "ResponseMetadata": {"HTTPStatusCode": 400, "HTTPHeaders": {}},
    }
    return http, parsed


@dataclass
class Harness:
    """A StreamService on its own DynamoDB Local table, with a fake clock and a fault injector."""

    client: Any
    table_name: str
    settings: Settings
    clock: FakeClock = field(default_factory=FakeClock)

    def __post_init__(self) -> None:
        self.faults = FaultInjector(self.client)
        self.store = PixStore(
            self.client, self.table_name, self.clock, self.settings.retention_seconds
        )
        self.service = StreamService(
            self.store, self.settings, PendingSignal(), clock=self.clock, monotonic=time.monotonic
        )

    @classmethod
    def create(cls, endpoint: str, **settings: Any) -> "Harness":
        """Create a fresh table on `endpoint` and a harness over it."""
        table_name = f"pix-stream-faults-{uuid.uuid4().hex[:8]}"
        create_table(local_client(endpoint), table_name)
        values = {"wait_seconds": 1.0, "lease_seconds": 3.0, "batch_size": 3, **settings}
        return cls(local_client(endpoint), table_name, Settings(table_name=table_name, **values))

    # Operations as a PSP performs them; a deadline of now means a single poll.

    def start(self, ispb: str, batch: int | None = None) -> ReadResult:
        return self.service.start(ispb, batch or self.settings.batch_size, time.monotonic())

    def read(self, ispb: str, link_id: str, batch: int | None = None) -> ReadResult:
        return self.service.read(ispb, link_id, batch or self.settings.batch_size, time.monotonic())

    def close(self, ispb: str, link_id: str) -> None:
        self.service.close(ispb, link_id)

    def insert(self, ispb: str, count: int) -> list[str]:
        messages = generate_messages(ispb, count, datetime.now(UTC))
        return self.store.insert_messages(messages)

    # The table as it is, read around the service.

    def message_queues(self, end_to_end_ids: list[str]) -> dict[str, str]:
        """Map each stored endToEndId to its queue_key while pending, else to its claim token."""
        queues: dict[str, str] = {}
        for start in range(0, len(end_to_end_ids), 100):
            keys = [{"pk": {"S": message_key(i)}} for i in end_to_end_ids[start : start + 100]]
            request: dict[str, Any] = {self.table_name: {"Keys": keys, "ConsistentRead": True}}
            while request:
                response = self.client.batch_get_item(RequestItems=request)
                for item in response["Responses"][self.table_name]:
                    holder = item.get("queue_key") or item["claim"]
                    queues[item["pk"]["S"].removeprefix("MSG#")] = holder["S"]
                request = response.get("UnprocessedKeys") or {}
        return queues

    def open_counter(self, ispb: str) -> int:
        item = self.client.get_item(
            TableName=self.table_name, Key={"pk": {"S": counter_key(ispb)}}, ConsistentRead=True
        ).get("Item", {})
        return int(item.get("open_streams", {}).get("N", "0"))

    def stream_state(self, stream_id: str) -> str:
        item = self.client.get_item(
            TableName=self.table_name, Key={"pk": {"S": stream_key(stream_id)}}, ConsistentRead=True
        )["Item"]
        state: str = item["state"]["S"]
        return state


def random_ispb() -> str:
    """Return a random ISPB from `secrets`, which hypothesis does not seed as it seeds `random`."""
    return f"{10**7 + secrets.randbelow(9 * 10**7):08d}"


def runtime_of(harness: Harness) -> Runtime:
    """Return a Runtime that serves app.py from the harness's service, clock and faults."""
    return Runtime(
        settings=harness.settings,
        store=harness.store,
        streams=harness.service,
        signal=PendingSignal(),
    )

"""Asynchronous HTTP clients of the contract: collectors that follow Pull-Next, and producers.

Times are `time.monotonic()` seconds of the benchmark process.
"""

import asyncio
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

logger = logging.getLogger(__name__)

MULTIPART = {"Accept": "multipart/json"}
MAX_CREATE = 1000
# Seconds to back off after an error reply or a transport error, before asking again.
ERROR_PAUSE_SECONDS = 0.2


@dataclass
class Poll:
    """One completed GET of a collector."""

    started: float
    duration: float
    status: int
    messages: int


@dataclass
class Ledger:
    """Messages one scenario created and received, with its collectors' polls and errors."""

    created: dict[str, float] = field(default_factory=dict)
    deliveries: list[tuple[str, float]] = field(default_factory=list)
    polls: list[Poll] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    received: set[str] = field(default_factory=set)
    body_bytes: list[int] = field(default_factory=list)
    expected: int | None = None
    complete: asyncio.Event = field(default_factory=asyncio.Event)

    def deliver(self, messages: list[dict[str, object]], raw_bytes: int, now: float) -> None:
        for message in messages:
            end_to_end_id = str(message["endToEndId"])
            self.deliveries.append((end_to_end_id, now))
            self.received.add(end_to_end_id)
        if messages:
            self.body_bytes.append(raw_bytes // len(messages))
        self._check_complete()

    def add_created(self, end_to_end_ids: list[str], sent: float) -> None:
        for end_to_end_id in end_to_end_ids:
            self.created[end_to_end_id] = sent
        self._check_complete()

    def _check_complete(self) -> None:
        if self.expected is None or len(self.created) < self.expected:
            return
        if self.received >= self.created.keys():
            self.complete.set()

    @property
    def duplicates(self) -> int:
        return len(self.deliveries) - len(self.received)

    @property
    def missing(self) -> int:
        return len(self.created.keys() - self.received)

    @property
    def unexpected(self) -> int:
        """Messages received that this scenario did not create."""
        return len(self.received - self.created.keys())

    def latencies(self) -> list[float]:
        """Seconds from each message's create request to its first receipt."""
        first: dict[str, float] = {}
        for end_to_end_id, received in self.deliveries:
            first.setdefault(end_to_end_id, received)
        return sorted(
            first[end_to_end_id] - sent
            for end_to_end_id, sent in self.created.items()
            if end_to_end_id in first
        )


def http_client(base_url: str, connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=base_url, limits=limits, timeout=httpx.Timeout(30.0))


async def create_messages(client: httpx.AsyncClient, ispb: str, count: int, ledger: Ledger) -> None:
    """Create `count` messages for `ispb` in requests of at most 1,000, recording each id."""
    while count > 0:
        number = min(count, MAX_CREATE)
        sent = time.monotonic()
        try:
            response = await client.post(f"/api/util/msgs/{ispb}/{number}")
        except httpx.TransportError as error:
            ledger.errors[f"create {type(error).__name__}"] += 1
            await asyncio.sleep(ERROR_PAUSE_SECONDS)
            continue
        if response.status_code != 201:
            ledger.errors[f"create {response.status_code}"] += 1
            await asyncio.sleep(float(response.headers.get("retry-after", ERROR_PAUSE_SECONDS)))
            continue
        ledger.add_created(response.json()["endToEndIds"], sent)
        count -= number


async def produce_steadily(
    client: httpx.AsyncClient, ispbs: list[str], rate: float, seconds: float, ledger: Ledger
) -> None:
    """Create one message every 1/`rate` s on a fixed timetable, cycling through `ispbs`.

    Each request is sent at its scheduled time whether or not earlier ones have returned,
    so a slow reply delays no later message and cannot hide latency.
    """
    total = round(rate * seconds)
    begin = time.monotonic()
    tasks = []
    for number in range(total):
        delay = begin + number / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        ispb = ispbs[number % len(ispbs)]
        tasks.append(asyncio.create_task(create_messages(client, ispb, 1, ledger)))
    await asyncio.gather(*tasks)


class Collector:
    """One PSP stream: start, follow Pull-Next until `stop` is set, then DELETE the last link."""

    def __init__(self, client: httpx.AsyncClient, ispb: str, ledger: Ledger) -> None:
        self._client = client
        self._ispb = ispb
        self._ledger = ledger
        self._link: str | None = None

    async def run(self, stop: asyncio.Event) -> None:
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                request = asyncio.create_task(self._read())
                await asyncio.wait({request, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not request.done():
                    # The reply would never be confirmed; closing the stream returns
                    # whatever this read claimed to pending.
                    request.cancel()
                    await asyncio.gather(request, return_exceptions=True)
                    break
                await request
        finally:
            stopping.cancel()
            await self.close()

    async def _read(self) -> None:
        path = self._link or f"/api/pix/{self._ispb}/stream/start"
        started = time.monotonic()
        try:
            response = await self._client.get(path, headers=MULTIPART)
        except httpx.TransportError as error:
            # Repeating the same link is safe: it returns the same messages again.
            self._ledger.errors[f"read {type(error).__name__}"] += 1
            await asyncio.sleep(ERROR_PAUSE_SECONDS)
            return
        now = time.monotonic()
        status = response.status_code
        messages = response.json() if status == 200 else []
        self._ledger.polls.append(Poll(started, now - started, status, len(messages)))
        if status in (200, 204):
            self._link = response.headers["pull-next"]
            self._ledger.deliver(messages, len(response.content), now)
            return
        self._ledger.errors[f"read {status}"] += 1
        if status in (429, 503):
            await asyncio.sleep(float(response.headers.get("retry-after", "1")))
        elif status in (404, 410):
            self._link = None
        else:
            await asyncio.sleep(ERROR_PAUSE_SECONDS)

    async def close(self) -> None:
        link, self._link = self._link, None
        if link is None:
            return
        try:
            response = await self._client.delete(link)
        except httpx.TransportError as error:
            self._ledger.errors[f"close {type(error).__name__}"] += 1
            return
        if response.status_code != 200:
            self._ledger.errors[f"close {response.status_code}"] += 1


def random_ispbs(count: int) -> list[str]:
    """Distinct random ISPBs, so that scenarios sharing a table never see each other's messages."""
    chosen: set[str] = set()
    while len(chosen) < count:
        chosen.add(f"{random.randrange(10**7, 10**8):08d}")
    return sorted(chosen)


async def measure_loop_lag(stop: asyncio.Event, lags: list[float], period: float = 0.1) -> None:
    """Record how late this event loop wakes from `period`-second sleeps until `stop` is set.

    A late loop delays every reply the client reads, so its lag is part of the client's
    poll durations and latencies, not the server's.
    """
    while not stop.is_set():
        before = time.monotonic()
        await asyncio.sleep(period)
        lags.append(time.monotonic() - before - period)


async def wait_for(event: asyncio.Event, timeout: float) -> bool:
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        return False
    return True

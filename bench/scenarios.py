"""The benchmark scenarios. Each uses ISPBs of its own and returns its figures as a dict.

Every scenario also returns `ispbs` (to pick its requests out of the server's metric lines)
and a `correctness` part: duplicates and missing messages, both of which must be 0.
"""

import asyncio
import math
import statistics
import time
from dataclasses import dataclass
from typing import Any

import httpx

from bench.load import (
    MAX_CREATE,
    Collector,
    Ledger,
    create_messages,
    http_client,
    measure_loop_lag,
    produce_steadily,
    random_ispbs,
    wait_for,
)

# Concurrent create requests while preloading: two keep the store busy without starving it.
PRELOAD_CONCURRENCY = 2
# Seconds the collectors get to open their streams before a scenario starts measuring.
SETTLE_SECONDS = 1.0
# Stream starts per second in the scale scenario: opening hundreds at the same instant
# measures a burst of starts rather than the cost of holding streams.
SCALE_STARTS_PER_SECOND = 30
# Seconds allowed, after the last create, for every message to arrive; and for a drain,
# plus one second per 50 messages. Messages still undelivered then count as missing.
ARRIVAL_TIMEOUT_SECONDS = 30.0
DRAIN_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Sizes:
    """Scenario sizes; the defaults are those of `make bench`."""

    drain_messages: int = 10_000
    # DynamoDB Local's JVM serves calls several times faster once it has compiled its hot
    # paths, after a few thousand calls. So the scenarios measure the warm store.
    warm_up_messages: int = 10_000
    collectors: int = 6
    latency_rate: float = 20.0
    latency_seconds: float = 30.0
    scale_ispbs: int = 50
    scale_idle_seconds: float = 20.0
    scale_rate: float = 10.0
    scale_seconds: float = 10.0


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def correctness(ledger: Ledger) -> dict[str, int]:
    """Duplicates and missing messages, which fail a run, and unexpected ones, which do not.

    An unexpected message was received for one of the scenario's own random ISPBs but was
    not listed by any create reply, so a create reply undercounted what it stored (for
    example after botocore repeated an insert batch whose first reply was lost). Such a
    message was still delivered once.
    """
    return {
        "created": len(ledger.created),
        "delivered": len(ledger.deliveries),
        "duplicates": ledger.duplicates,
        "missing": ledger.missing,
        "unexpected": ledger.unexpected,
    }


def latency_summary(ledger: Ledger) -> dict[str, float]:
    """Latency percentiles in milliseconds."""
    values = [v * 1000 for v in ledger.latencies()]
    return {
        "count": len(values),
        "p50_ms": round(percentile(values, 0.50), 1),
        "p95_ms": round(percentile(values, 0.95), 1),
        "p99_ms": round(percentile(values, 0.99), 1),
        "max_ms": round(values[-1], 1) if values else math.nan,
        "mean_ms": round(statistics.fmean(values), 1) if values else math.nan,
    }


def mean_body_bytes(ledger: Ledger) -> float:
    return statistics.fmean(ledger.body_bytes) if ledger.body_bytes else 0.0


async def _run_collectors(
    base_url: str, ispbs: list[str], per_ispb: int, ledger: Ledger, ramp_seconds: float = 0.0
) -> tuple[asyncio.Event, asyncio.Future[list[Any]], list[httpx.AsyncClient]]:
    """Start `per_ispb` collectors per ISPB, spread evenly over `ramp_seconds`.

    Each collector gets a client of its own: httpcore's connection pool scans every
    connection for every request, which with hundreds of connections in one pool kept the
    event loop busy for seconds and inflated every client-side figure.
    """
    # Two connections: a read cancelled at the end may still hold one while DELETE runs.
    clients = [http_client(base_url, 2) for _ in range(len(ispbs) * per_ispb)]
    stop = asyncio.Event()
    ispb_list = [ispb for ispb in ispbs for _ in range(per_ispb)]
    collectors = [Collector(c, ispb, ledger) for c, ispb in zip(clients, ispb_list, strict=True)]
    step = ramp_seconds / len(collectors)

    async def run(number: int, collector: Collector) -> None:
        await asyncio.sleep(number * step)
        await collector.run(stop)

    tasks = asyncio.gather(*(run(n, c) for n, c in enumerate(collectors)))
    return stop, tasks, clients


async def _stop_collectors(
    stop: asyncio.Event, tasks: asyncio.Future[list[Any]], clients: list[httpx.AsyncClient]
) -> None:
    stop.set()
    await tasks
    await asyncio.gather(*(client.aclose() for client in clients))


async def warm_up(collector_url: str, producer_url: str, messages: int) -> None:
    """Create messages through the producer and drain them through the collector server.

    A fresh DynamoDB Local runs several times slower until the JVM has compiled its hot
    paths, and on a busy machine its first calls can outlast the app's 2 s read timeout.
    """
    if messages <= 0:
        return
    ispbs = random_ispbs(1)
    ledger = Ledger()
    async with http_client(producer_url, PRELOAD_CONCURRENCY + 2) as client:
        await create_messages(client, ispbs[0], messages, ledger)
    ledger.expected = len(ledger.created)
    stop, tasks, clients = await _run_collectors(collector_url, ispbs, 6, ledger)
    await wait_for(ledger.complete, DRAIN_TIMEOUT_SECONDS)
    await _stop_collectors(stop, tasks, clients)


async def drain(base_url: str, sizes: Sizes) -> dict[str, Any]:
    """Preload one ISPB, then measure how fast `collectors` multipart streams empty it."""
    ispbs = random_ispbs(1)
    ledger = Ledger(expected=sizes.drain_messages)
    preload_began = time.monotonic()
    async with http_client(base_url, PRELOAD_CONCURRENCY + 2) as client:
        requests = math.ceil(sizes.drain_messages / MAX_CREATE)
        counts = [MAX_CREATE] * (requests - 1) + [
            sizes.drain_messages - MAX_CREATE * (requests - 1)
        ]
        gate = asyncio.Semaphore(PRELOAD_CONCURRENCY)

        async def create(count: int) -> None:
            async with gate:
                await create_messages(client, ispbs[0], count, ledger)

        await asyncio.gather(*(create(count) for count in counts))
    preload_seconds = time.monotonic() - preload_began
    # A create reply can list fewer ids than it stored (see correctness()), so the drain
    # waits for what the replies listed.
    ledger.expected = len(ledger.created)

    began = time.monotonic()
    stop, tasks, clients = await _run_collectors(base_url, ispbs, sizes.collectors, ledger)
    drained = await wait_for(ledger.complete, DRAIN_TIMEOUT_SECONDS + sizes.drain_messages / 50)
    await _stop_collectors(stop, tasks, clients)

    times = [received - began for _, received in ledger.deliveries]
    seconds = max(times) if times else math.nan
    replies = [p for p in ledger.polls if p.status == 200]
    return {
        "ispbs": ispbs,
        "messages": sizes.drain_messages,
        "collectors": sizes.collectors,
        "drained": drained,
        "preload_seconds": round(preload_seconds, 2),
        "preload_messages_per_second": round(sizes.drain_messages / preload_seconds, 1),
        "seconds": round(seconds, 2),
        "messages_per_second": round(len(ledger.received) / seconds, 1),
        "replies": len(replies),
        "mean_batch": round(statistics.fmean(p.messages for p in replies), 2) if replies else 0,
        "mean_body_bytes": round(mean_body_bytes(ledger), 1),
        "errors": dict(ledger.errors),
        "correctness": correctness(ledger),
        "series": {"receipt_seconds": sorted(times)},
    }


async def latency(collector_url: str, producer_url: str, sizes: Sizes) -> dict[str, Any]:
    """Measure create-to-receipt time at a steady rate with `collectors` streams waiting."""
    ispbs = random_ispbs(1)
    expected = round(sizes.latency_rate * sizes.latency_seconds)
    ledger = Ledger(expected=expected)
    stop, tasks, clients = await _run_collectors(collector_url, ispbs, sizes.collectors, ledger)
    await asyncio.sleep(SETTLE_SECONDS)
    async with http_client(producer_url, 64) as producer:
        await produce_steadily(producer, ispbs, sizes.latency_rate, sizes.latency_seconds, ledger)
    arrived = await wait_for(ledger.complete, ARRIVAL_TIMEOUT_SECONDS)
    await _stop_collectors(stop, tasks, clients)
    return {
        "ispbs": ispbs,
        "rate_per_second": sizes.latency_rate,
        "seconds": sizes.latency_seconds,
        "collectors": sizes.collectors,
        "same_process": collector_url == producer_url,
        "all_arrived": arrived,
        "latency": latency_summary(ledger),
        "errors": dict(ledger.errors),
        "correctness": correctness(ledger),
        "series": {"latency_ms": [v * 1000 for v in ledger.latencies()]},
    }


async def scale(collector_url: str, producer_url: str, sizes: Sizes) -> dict[str, Any]:
    """Hold `scale_ispbs` x `collectors` idle long polls, then deliver messages to them."""
    ispbs = random_ispbs(sizes.scale_ispbs)
    expected = round(sizes.scale_rate * sizes.scale_seconds)
    ledger = Ledger(expected=expected)
    streams = sizes.scale_ispbs * sizes.collectors
    ramp = streams / SCALE_STARTS_PER_SECOND
    stop, tasks, clients = await _run_collectors(
        collector_url, ispbs, sizes.collectors, ledger, ramp
    )
    lags: list[float] = []
    lag_task = asyncio.create_task(measure_loop_lag(stop, lags))
    await asyncio.sleep(ramp + sizes.scale_idle_seconds)
    async with http_client(producer_url, 64) as producer:
        await produce_steadily(producer, ispbs, sizes.scale_rate, sizes.scale_seconds, ledger)
    arrived = await wait_for(ledger.complete, ARRIVAL_TIMEOUT_SECONDS)
    await _stop_collectors(stop, tasks, clients)
    await lag_task
    lags.sort()

    empty = sorted(p.duration for p in ledger.polls if p.status == 204)
    return {
        "ispbs": ispbs,
        "streams": sizes.scale_ispbs * sizes.collectors,
        "idle_seconds": sizes.scale_idle_seconds,
        "rate_per_second": sizes.scale_rate,
        "seconds": sizes.scale_seconds,
        "same_process": collector_url == producer_url,
        "all_arrived": arrived,
        "empty_polls": {
            "count": len(empty),
            "p50_s": round(percentile(empty, 0.50), 3),
            "p99_s": round(percentile(empty, 0.99), 3),
            "max_s": round(empty[-1], 3) if empty else math.nan,
            "over_8_5_s": sum(1 for d in empty if d > 8.5),
        },
        "client_loop_lag": {
            "p99_s": round(percentile(lags, 0.99), 3),
            "max_s": round(lags[-1], 3) if lags else math.nan,
        },
        "latency": latency_summary(ledger),
        "errors": dict(ledger.errors),
        "correctness": correctness(ledger),
        "series": {
            "empty_poll_seconds": empty,
            "latency_ms": [v * 1000 for v in ledger.latencies()],
        },
    }

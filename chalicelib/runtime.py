"""The objects one process shares across requests: settings, DynamoDB client, services.

They are built on first use and kept, so a warm Lambda reuses its DynamoDB connections.
"""

import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config

from chalicelib.config import Settings
from chalicelib.messages import generate_messages
from chalicelib.polling import PendingSignal
from chalicelib.store import PixStore
from chalicelib.streams import StreamService

logger = logging.getLogger(__name__)

# Short timeouts and few attempts keep one stalled DynamoDB call from outlasting the long
# poll. botocore's legacy default is 10 attempts with a 60 s read timeout.
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=1,
    read_timeout=2,
    # One connection per concurrent request thread of a local server; Lambda uses one.
    max_pool_connections=512,
)


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    store: PixStore
    streams: StreamService
    signal: PendingSignal

    def insert_generated(self, ispb: str, count: int) -> list[str]:
        """Create `count` random messages for `ispb`; return the endToEndIds stored."""
        messages = generate_messages(ispb, count, datetime.now(UTC))
        inserted = self.store.insert_messages(messages)
        # One waiter per new message: each read takes at least one.
        self.signal.notify(ispb, waiters=len(inserted))
        return inserted


def build_runtime(settings: Settings | None = None, client: Any = None) -> Runtime:
    settings = settings or Settings.from_env()
    if client is None:
        client = boto3.client("dynamodb", config=CLIENT_CONFIG)
    logger.info(
        "using DynamoDB table %s at %s",
        settings.table_name,
        client.meta.endpoint_url,
        extra={"table": settings.table_name, "endpoint": client.meta.endpoint_url},
    )
    store = PixStore(client, settings.table_name, time.time, settings.retention_seconds)
    signal = PendingSignal()
    streams = StreamService(store, settings, signal, clock=time.time, monotonic=time.monotonic)
    return Runtime(settings=settings, store=store, streams=streams, signal=signal)


_lock = threading.Lock()
_runtime: Runtime | None = None


def get_runtime() -> Runtime:
    """Return this process's runtime, building it on first use."""
    global _runtime  # noqa: PLW0603 - one runtime per process, built lazily
    with _lock:
        if _runtime is None:
            _runtime = build_runtime()
        return _runtime


def reset_runtime(runtime: Runtime | None = None) -> None:
    """Replace this process's runtime (tests) or drop it so the next use rebuilds it."""
    global _runtime  # noqa: PLW0603
    with _lock:
        _runtime = runtime


def test_endpoints_enabled() -> bool:
    # Read at import time by app.py: a route either exists in a deployment or does not.
    return Settings.from_env(os.environ).test_endpoints


def auth_enabled() -> bool:
    # Read at import time by app.py, like test_endpoints_enabled.
    return Settings.from_env(os.environ).auth

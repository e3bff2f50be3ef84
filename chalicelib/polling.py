"""The long-poll loop: ask the store until messages arrive or the deadline passes.

Idle polling is what an ISPB's waiting streams cost, so the loop backs off while nothing
arrives, and the waiters of one ISPB in one process share their empty queries: when one of
them has just found the queue empty, the others wait instead of asking again. Messages
created in this process wake the waiters at once; messages created elsewhere are found by
the next poll.
"""

import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class PendingSignal:
    """Per-ISPB arrival notices and the time of the last empty query, for one process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        # One condition per ISPB with waiters, all sharing the lock, so a notice can wake
        # a chosen number of one ISPB's waiters without waking other ISPBs' waiters.
        self._conditions: dict[str, threading.Condition] = {}
        self._waiters: dict[str, int] = {}
        self._versions: dict[str, int] = {}
        self._last_empty: dict[str, float] = {}

    def notify(self, ispb: str, waiters: int | None = None) -> None:
        """Tell the waiters of `ispb` that new messages may be pending.

        `waiters` wakes at most that many of them at once, for example one per new
        message, so that a single message does not send every waiting stream to claim it.
        The others see the notice when their own wait interval ends. None wakes them all.
        """
        with self._lock:
            self._versions[ispb] = self._versions.get(ispb, 0) + 1
            self._last_empty.pop(ispb, None)
            condition = self._conditions.get(ispb)
            if condition is None:
                return
            if waiters is None:
                condition.notify_all()
            else:
                condition.notify(waiters)

    def version(self, ispb: str) -> int:
        with self._lock:
            return self._versions.get(ispb, 0)

    def mark_empty(self, ispb: str, version: int) -> float | None:
        """Record an empty query that started when the ISPB's version was `version`.

        Returns the time recorded, or None when a notice came in since `version`.
        """
        with self._lock:
            if self._versions.get(ispb, 0) != version:
                return None
            now = self._clock()
            self._last_empty[ispb] = now
            return now

    def empty_since(self, ispb: str, since: float | None, seconds: float) -> bool:
        """Tell whether a query found the ISPB's queue empty within the last `seconds`, later
        than `since` (a waiter passes the time of its own last empty query)."""
        with self._lock:
            last = self._last_empty.get(ispb)
            if last is None or (since is not None and last <= since):
                return False
            return self._clock() - last < seconds

    def wait(self, ispb: str, version: int, timeout: float) -> bool:
        """Sleep up to `timeout` seconds; return True once `ispb` has had a notice since
        `version`, whether this waiter was woken by it or found it when its time ran out."""
        end = self._clock() + timeout
        with self._lock:
            condition = self._conditions.setdefault(ispb, threading.Condition(self._lock))
            self._waiters[ispb] = self._waiters.get(ispb, 0) + 1
            try:
                while self._versions.get(ispb, 0) == version:
                    remaining = end - self._clock()
                    if remaining <= 0:
                        return False
                    condition.wait(remaining)
                return True
            finally:
                self._waiters[ispb] -= 1
                if not self._waiters[ispb]:
                    del self._waiters[ispb]
                    del self._conditions[ispb]


class LongPoll:
    """Repeat an attempt until it returns a result or the deadline passes.

    `attempt` returns None when nothing was pending. The interval between attempts starts
    at `min_interval` and doubles while attempts keep finding nothing, up to `max_interval`.
    """

    def __init__(
        self,
        signal: PendingSignal,
        min_interval: float,
        max_interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._signal = signal
        self._min = min_interval
        self._max = max_interval
        self._clock = clock

    def run(
        self, ispb: str, deadline: float, attempt: Callable[[], T | None]
    ) -> tuple[T | None, int]:
        """Return the first result of `attempt` (or None at the deadline) and the poll count."""
        interval = self._min
        polls = 0
        own_empty: float | None = None
        while True:
            version = self._signal.version(ispb)
            # Skip the query when another waiter of this ISPB found the queue empty after this
            # waiter's own last query, unless this is the first poll of the request.
            if polls == 0 or not self._signal.empty_since(ispb, own_empty, interval):
                polls += 1
                result = attempt()
                if result is not None:
                    return result, polls
                own_empty = self._signal.mark_empty(ispb, version)
            remaining = deadline - self._clock()
            if remaining <= 0:
                return None, polls
            notified = self._signal.wait(ispb, version, min(interval, remaining))
            interval = self._min if notified else min(interval * 2, self._max)

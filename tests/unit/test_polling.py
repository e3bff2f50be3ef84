"""The long-poll loop: how often a waiting request queries the store."""

import time

from chalicelib.polling import LongPoll, PendingSignal

ISPB = "12345678"


def test_lone_waiter_polls_as_interval_grows() -> None:
    signal = PendingSignal()
    poll = LongPoll(signal, min_interval=0.02, max_interval=0.5)
    queried: list[float] = []

    def attempt() -> None:
        queried.append(time.monotonic())

    result, polls = poll.run(ISPB, time.monotonic() + 0.5, attempt)

    # Intervals of 0.02, 0.04, 0.08 and 0.16 s fit in the wait: at least 4 queries.
    assert result is None
    assert polls == len(queried)
    assert polls >= 4


def test_waiter_skips_query_after_another_found_nothing() -> None:
    signal = PendingSignal()
    mine = signal.mark_empty(ISPB, signal.version(ISPB))

    assert mine is not None
    assert not signal.empty_since(ISPB, mine, 1.0)
    assert signal.empty_since(ISPB, mine - 1.0, 1.0)
    assert signal.empty_since(ISPB, None, 1.0)


def test_notice_clears_the_empty_mark() -> None:
    signal = PendingSignal()
    version = signal.version(ISPB)
    signal.notify(ISPB)

    assert signal.mark_empty(ISPB, version) is None
    assert not signal.empty_since(ISPB, None, 1.0)

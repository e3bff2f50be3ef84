"""Progress line, its log handler and the rate meter in pixcollect.progress."""

import io
import logging

import pytest

from pixcollect.progress import ProgressAwareHandler, ProgressLine, RateMeter, format_progress

ERASE = "\r\x1b[K"


def test_progress_line_redraws_in_place() -> None:
    stream = io.StringIO()
    line = ProgressLine(stream)

    line.show("1 messages written")
    line.show("2 messages written")

    assert stream.getvalue() == f"{ERASE}1 messages written{ERASE}2 messages written"


def test_progress_line_close_erases() -> None:
    stream = io.StringIO()
    line = ProgressLine(stream)
    line.show("status")

    line.close()
    line.redraw()

    assert stream.getvalue() == f"{ERASE}status{ERASE}"


def test_progress_line_empty_writes_nothing() -> None:
    stream = io.StringIO()
    line = ProgressLine(stream)

    line.erase()
    line.redraw()

    assert stream.getvalue() == ""


def test_handler_keeps_progress_below_log() -> None:
    stream = io.StringIO()
    line = ProgressLine(stream)
    handler = ProgressAwareHandler(stream, line)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("test_pixcollect_progress")
    logger.addHandler(handler)
    logger.propagate = False
    line.show("status")

    try:
        logger.warning("stream 1: retrying")
    finally:
        logger.removeHandler(handler)

    assert stream.getvalue() == f"{ERASE}status{ERASE}stream 1: retrying\n{ERASE}status"


def test_rate_meter_first_sample_zero() -> None:
    meter = RateMeter(window=5.0)

    assert meter.update(100.0, 40) == 0.0


def test_rate_meter_rate_within_window() -> None:
    meter = RateMeter(window=5.0)
    meter.update(100.0, 0)
    meter.update(101.0, 10)

    assert meter.update(102.0, 30) == pytest.approx(15.0)


def test_rate_meter_forgets_old_samples() -> None:
    meter = RateMeter(window=5.0)
    meter.update(100.0, 0)
    for second in range(101, 110):
        meter.update(float(second), 1000)

    assert meter.update(110.0, 1000) == 0.0


def test_format_progress() -> None:
    text = format_progress(written=1234, rate=56.78, open_streams=5, streams=6)

    assert text == "1234 messages written, 56.8 msg/s, 5/6 streams open"

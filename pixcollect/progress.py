"""A live progress line on a terminal, and a logging handler that keeps it readable."""

import logging
from collections import deque
from typing import TextIO

# Moves the cursor to column 0 and erases to the end of the line (ANSI CSI K).
_ERASE_LINE = "\r\x1b[K"


class ProgressLine:
    """A one-line status on a terminal, redrawn in place."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._text = ""

    def show(self, text: str) -> None:
        self._text = text
        self.redraw()

    def redraw(self) -> None:
        if self._text:
            self._stream.write(_ERASE_LINE + self._text)
            self._stream.flush()

    def erase(self) -> None:
        """Erase the line from the screen, keeping its text for the next ``redraw``."""
        if self._text:
            self._stream.write(_ERASE_LINE)
            self._stream.flush()

    def close(self) -> None:
        self.erase()
        self._text = ""


class ProgressAwareHandler(logging.StreamHandler[TextIO]):
    """Log handler that erases the progress line before a record and redraws it after."""

    def __init__(self, stream: TextIO, progress: ProgressLine) -> None:
        super().__init__(stream)
        self._progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        self._progress.erase()
        super().emit(record)
        self._progress.redraw()


class RateMeter:
    """Rate of a growing count per second, over a sliding window of ``window`` seconds."""

    def __init__(self, window: float = 5.0) -> None:
        self._window = window
        self._samples: deque[tuple[float, int]] = deque()

    def update(self, now: float, count: int) -> float:
        """Record ``count`` at time ``now`` (seconds) and return the rate over the window."""
        self._samples.append((now, count))
        while len(self._samples) > 1 and now - self._samples[1][0] >= self._window:
            self._samples.popleft()
        first_time, first_count = self._samples[0]
        elapsed = now - first_time
        if elapsed <= 0:
            return 0.0
        return (count - first_count) / elapsed


def format_progress(written: int, rate: float, open_streams: int, streams: int) -> str:
    return f"{written} messages written, {rate:.1f} msg/s, {open_streams}/{streams} streams open"

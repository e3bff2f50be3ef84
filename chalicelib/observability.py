"""Structured request logs that double as CloudWatch embedded-metric (EMF) records.

Each request writes one JSON line to standard output. CloudWatch Logs turns the ``_aws``
part into metrics on AWS, and the benchmark harness sums the same lines locally, so the
capacity figures it reports are the ones DynamoDB returned to the app.
"""

import json
import logging
import sys
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import IO, Any

from chalicelib import capacity
from chalicelib.capacity import CapacityMeter
from chalicelib.tracing import Span

NAMESPACE = "PixStream"

# Metric name, unit, and the field of RequestRecord it is taken from.
METRICS = (
    ("MessagesDelivered", "Count", "messages"),
    ("ReadCapacityUnits", "Count", "read_units"),
    ("WriteCapacityUnits", "Count", "write_units"),
    ("StoreCalls", "Count", "store_calls"),
    ("Polls", "Count", "polls"),
    ("EmptyPolls", "Count", "empty_polls"),
    ("StreamLimitRejections", "Count", "limit_rejections"),
    ("StreamsExpired", "Count", "expired"),
    # Claimed but unconfirmed messages returned to pending: those of ended streams, and
    # those of a read that a newer request on the same link replaced.
    ("MessagesReleased", "Count", "released"),
    # Time spent in the long poll, from its first store query to its result or deadline.
    ("WaitTime", "Milliseconds", "wait_ms"),
    ("Duration", "Milliseconds", "duration_ms"),
)


@dataclass
class RequestRecord:
    """The record of one request, filled in as it runs and written once at its end."""

    operation: str
    ispb: str | None = None
    stream: str | None = None
    link: int | None = None
    status: int = 0
    messages: int = 0
    polls: int = 0
    empty_polls: int = 0
    limit_rejections: int = 0
    expired: int = 0
    released: int = 0
    wait_ms: int = 0
    started: float = field(default_factory=time.monotonic)
    meter: CapacityMeter = field(default_factory=CapacityMeter)

    @property
    def duration_ms(self) -> float:
        return round((time.monotonic() - self.started) * 1000, 1)

    @property
    def read_units(self) -> float:
        return round(self.meter.read_units, 2)

    @property
    def write_units(self) -> float:
        return round(self.meter.write_units, 2)

    @property
    def store_calls(self) -> int:
        return self.meter.calls

    def to_document(self, now_ms: int) -> dict[str, Any]:
        document: dict[str, Any] = {
            "_aws": {
                "Timestamp": now_ms,
                "CloudWatchMetrics": [
                    {
                        "Namespace": NAMESPACE,
                        "Dimensions": [["Operation"]],
                        "Metrics": [{"Name": name, "Unit": unit} for name, unit, _ in METRICS],
                    }
                ],
            },
            "Operation": self.operation,
            "level": "INFO",
            "message": "request",
            "ispb": self.ispb,
            "stream": self.stream,
            "link": self.link,
            "status": self.status,
            "unreportedStoreCalls": self.meter.unreported_calls,
            "storeCallsByOperation": self.meter.by_operation,
            "statementsByOperation": self.meter.statements,
            "unitsByOperation": self.meter.units_by_operation,
        }
        for name, _, attribute in METRICS:
            document[name] = getattr(self, attribute)
        return document


class MetricsWriter:
    """Write request records as single JSON lines; logging's formatting is not involved,
    so a line is always valid EMF whatever handlers the application configures."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream

    def write(self, record: RequestRecord) -> None:
        document = record.to_document(int(time.time() * 1000))
        line = json.dumps(document, separators=(",", ":"))
        out = self._stream or sys.stdout
        try:
            out.write(line + "\n")
            out.flush()
        except (OSError, ValueError):
            logging.getLogger(__name__).warning("could not write the request metrics line")


_current: ContextVar[RequestRecord | None] = ContextVar("request_record", default=None)


def start_record(operation: str, ispb: str | None = None) -> RequestRecord:
    """Start recording the current request; store calls are metered from here on."""
    record = RequestRecord(operation=operation, ispb=ispb, meter=capacity.start_meter())
    _current.set(record)
    return record


def count(field_name: str, amount: int = 1) -> None:
    """Add to a counter of the current request's record, if one is being recorded."""
    record = _current.get()
    if record is not None:
        setattr(record, field_name, getattr(record, field_name) + amount)


def describe_link(stream_id: str, link: int) -> None:
    """Record which stream and link the current request is about, if one is being recorded."""
    record = _current.get()
    if record is not None:
        record.stream = stream_id
        record.link = link


def current_record() -> RequestRecord | None:
    return _current.get()


def annotate_trace(span: Span, record: RequestRecord) -> None:
    """Copy a request's ids into trace annotations and its counts into trace metadata."""
    span.annotate("ispb", record.ispb)
    span.annotate("stream_id", record.stream)
    span.annotate("status", record.status or None)
    span.metadata("link", record.link)
    for name, _, attribute in METRICS:
        span.metadata(name, getattr(record, attribute))

"""DynamoDB capacity consumed by the current request, summed from `ConsumedCapacity`."""

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


@dataclass
class CapacityMeter:
    """Read and write capacity units, and store calls, of one request or job."""

    read_units: float = 0.0
    write_units: float = 0.0
    calls: int = 0
    # Calls whose response carried no ConsumedCapacity (DynamoDB Local leaves it out of
    # PartiQL batches), so a report can state how complete its figures are.
    unreported_calls: int = 0
    by_operation: dict[str, int] = field(default_factory=dict)
    # PartiQL statements (or transaction items) sent and failed per operation, so that the
    # cost of calls that DynamoDB Local does not report can be computed from DynamoDB's
    # pricing rules.
    statements: dict[str, dict[str, int]] = field(default_factory=dict)
    # Units the responses reported, per operation, so a report can replace figures that
    # DynamoDB Local gets wrong.
    units_by_operation: dict[str, float] = field(default_factory=dict)

    def add(self, operation: str, response: dict[str, Any]) -> None:
        self.calls += 1
        self.by_operation[operation] = self.by_operation.get(operation, 0) + 1
        consumed = response.get("ConsumedCapacity")
        if consumed is None:
            self.unreported_calls += 1
            return
        entries = consumed if isinstance(consumed, list) else [consumed]
        before = self.read_units + self.write_units
        for entry in entries:
            self.read_units += float(entry.get("ReadCapacityUnits", 0.0))
            self.write_units += float(entry.get("WriteCapacityUnits", 0.0))
            # Some responses give only the total, without the read/write split.
            if "ReadCapacityUnits" not in entry and "WriteCapacityUnits" not in entry:
                total = float(entry.get("CapacityUnits", 0.0))
                if operation in _READ_OPERATIONS:
                    self.read_units += total
                else:
                    self.write_units += total
        reported = self.read_units + self.write_units - before
        self.units_by_operation[operation] = self.units_by_operation.get(operation, 0) + reported

    def add_statements(self, operation: str, sent: int, failed: int) -> None:
        counts = self.statements.setdefault(operation, {"sent": 0, "failed": 0})
        counts["sent"] += sent
        counts["failed"] += failed


_READ_OPERATIONS = frozenset({"Query", "GetItem", "BatchGetItem"})

_current: ContextVar[CapacityMeter | None] = ContextVar("capacity_meter", default=None)


def start_meter() -> CapacityMeter:
    """Start metering the current context (one request or one scheduled run)."""
    meter = CapacityMeter()
    _current.set(meter)
    return meter


def record(operation: str, response: dict[str, Any]) -> None:
    meter = _current.get()
    if meter is not None:
        meter.add(operation, response)


def record_statements(operation: str, sent: int, failed: int) -> None:
    """Count the statements of one PartiQL batch and how many of them failed."""
    meter = _current.get()
    if meter is not None:
        meter.add_statements(operation, sent, failed)

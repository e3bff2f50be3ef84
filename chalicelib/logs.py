"""JSON log lines through the standard logging module.

Each record becomes one JSON object on one line: time, level, logger, the %-formatted
message, and every field passed in `extra`. CloudWatch Logs Insights reads these fields
without parsing patterns. Callers pass ids (ISPB, stream, link) and counts, never message
contents or personal data.
"""

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

# Attributes that every LogRecord has; anything else on a record came from `extra`.
_RECORD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)).keys()
) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """Format a record as a single-line JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "timestamp": _iso_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                document[key] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        return json.dumps(document, default=str, separators=(",", ":"))


def _iso_time(created: float) -> str:
    moment = datetime.fromtimestamp(created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def use_json_logs(level: int = logging.INFO, stream: IO[str] | None = None) -> None:
    """Send every log record to one handler that writes JSON lines to `stream` (stdout).

    Replaces the root logger's handlers, which in Lambda means the runtime's text handler;
    Lambda sends standard output to CloudWatch Logs line by line. Calling it again changes
    nothing, so the app and the local server can both call it.
    """
    root = logging.getLogger()
    if any(isinstance(handler.formatter, JsonFormatter) for handler in root.handlers):
        return
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)

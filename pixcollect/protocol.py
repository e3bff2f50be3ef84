"""Parsing of pix-stream replies: message batches, ``Pull-Next`` links and ``Retry-After``."""

import email.utils
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

ISPB_PATTERN = re.compile(r"[0-9]{8}")
PULL_NEXT_HEADER = "Pull-Next"

# `Accept` values that select one message per reply or an array of up to 10.
ACCEPT_SINGLE = "application/json"
ACCEPT_MULTIPART = "multipart/json"

Message = dict[str, Any]


class ProtocolError(Exception):
    """A reply that does not follow the pix-stream contract."""


def parse_batch(body: bytes) -> list[Message]:
    """Decode a 200 body into its messages.

    The body is one JSON object (single format) or a JSON array of objects (multipart
    format). Raises ProtocolError for anything else, naming what was found.
    """
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"reply body is not valid JSON: {exc}") from exc

    if isinstance(data, dict):
        return [data]
    if not isinstance(data, list):
        raise ProtocolError(
            f"reply body is a JSON {type(data).__name__}, expected an object or an array"
        )
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            raise ProtocolError(
                f"item {index} of the reply array is a JSON {type(item).__name__}, "
                "expected an object"
            )
    return data


def end_to_end_id(message: Message) -> str | None:
    """Return the message's ``endToEndId``, or None when it is missing or not a string."""
    value = message.get("endToEndId")
    return value if isinstance(value, str) and value else None


def resolve_link(base_url: httpx.URL, link: str | None) -> httpx.URL:
    """Resolve a ``Pull-Next`` value against the base URL.

    Raises ProtocolError when the header is missing or the link leaves the base URL's
    scheme, host and port, so that a misbehaving server cannot redirect the collector's
    traffic, and the batch confirmation it carries, to another host.
    """
    if not link:
        raise ProtocolError(f"reply has no {PULL_NEXT_HEADER} header")
    resolved = base_url.join(link)
    if (resolved.scheme, resolved.host, resolved.port) != (
        base_url.scheme,
        base_url.host,
        base_url.port,
    ):
        raise ProtocolError(f"{PULL_NEXT_HEADER} {link!r} points outside {base_url}")
    return resolved


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Return the delay in seconds that a ``Retry-After`` header requests.

    Accepts both forms of RFC 9110: a number of seconds and an HTTP date. Returns None
    when the header is missing or invalid, and 0 for a date in the past.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        # RFC 9110 dates are always GMT, and parsedate_to_datetime returns a naive
        # datetime for "-0000".
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


def problem_detail(response: httpx.Response) -> str:
    """Return the ``detail`` (or ``title``) of an RFC 9457 problem reply, or its raw body."""
    try:
        problem = json.loads(response.content)
    except (UnicodeDecodeError, json.JSONDecodeError):
        problem = None
    if isinstance(problem, dict):
        for key in ("detail", "title"):
            if isinstance(problem.get(key), str):
                return str(problem[key])
    return response.text[:200]


@dataclass
class Backoff:
    """Exponential backoff with jitter for retries that have no ``Retry-After``.

    The n-th consecutive delay is drawn from [d/2, d] with d = initial * 2**(n-1), capped
    at ``maximum`` seconds. The jitter keeps the streams of one collector from retrying in
    lockstep.
    """

    initial: float = 0.5
    maximum: float = 30.0
    uniform: Callable[[float, float], float] = field(default=random.uniform, repr=False)
    failures: int = 0

    def next_delay(self) -> float:
        """Count one more failure and return the seconds to wait before the next attempt."""
        # The exponent is capped so that a long outage cannot overflow the float.
        ceiling = min(self.maximum, self.initial * 2 ** min(self.failures, 32))
        self.failures += 1
        return self.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.failures = 0

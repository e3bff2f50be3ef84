"""Settings read from environment variables, in one place.

Every variable has the default of the HTTP contract, so a local run needs none of them.
An explicit argument to `Settings.from_env` beats the environment, which tests use.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass

TABLE_NAME = "PIX_TABLE_NAME"
WAIT_SECONDS = "PIX_WAIT_SECONDS"
STREAM_LIMIT = "PIX_STREAM_LIMIT"
BATCH_SIZE = "PIX_BATCH_SIZE"
LEASE_SECONDS = "PIX_LEASE_SECONDS"
RETENTION_DAYS = "PIX_RETENTION_DAYS"
POLL_MIN_SECONDS = "PIX_POLL_MIN_SECONDS"
POLL_MAX_SECONDS = "PIX_POLL_MAX_SECONDS"
RETRY_AFTER_SECONDS = "PIX_RETRY_AFTER_SECONDS"
TEST_ENDPOINTS = "PIX_TEST_ENDPOINTS"
CLAIM_SPREAD = "PIX_CLAIM_SPREAD"
AUTH = "PIX_AUTH"
# X-Ray tracing: on/off. Unset means on in Lambda and off elsewhere (chalicelib/tracing.py).
TRACING = "PIX_TRACING"

# API Gateway ends every integration after 29 s and Chalice cannot raise that limit, so a
# long poll must reply well before it, whatever PIX_WAIT_SECONDS is set to.
GATEWAY_TIMEOUT_SECONDS = 29.0
MAX_WAIT_SECONDS = 25.0

# The largest batch the contract allows in one multipart reply.
MAX_BATCH_SIZE = 10


class SettingsError(ValueError):
    """A setting has a value the service cannot run with."""


@dataclass(frozen=True)
class Settings:
    table_name: str = "pix-stream"
    wait_seconds: float = 8.0
    stream_limit: int = 6
    batch_size: int = MAX_BATCH_SIZE
    lease_seconds: float = 60.0
    retention_days: float = 7.0
    poll_min_seconds: float = 0.02
    poll_max_seconds: float = 0.5
    retry_after_seconds: int = 1
    test_endpoints: bool = True
    # How many shares concurrent streams of one ISPB split the pending messages into, so that
    # they claim different messages instead of racing for the same oldest ones.
    claim_spread: int = 6
    # Whether stream routes require an API key bound to the ISPB in the path.
    auth: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> "Settings":
        """Build settings from `environ` (default `os.environ`), then apply `overrides`."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        _read(values, env, "table_name", TABLE_NAME, str)
        _read(values, env, "wait_seconds", WAIT_SECONDS, float)
        _read(values, env, "stream_limit", STREAM_LIMIT, int)
        _read(values, env, "batch_size", BATCH_SIZE, int)
        _read(values, env, "lease_seconds", LEASE_SECONDS, float)
        _read(values, env, "retention_days", RETENTION_DAYS, float)
        _read(values, env, "poll_min_seconds", POLL_MIN_SECONDS, float)
        _read(values, env, "poll_max_seconds", POLL_MAX_SECONDS, float)
        _read(values, env, "retry_after_seconds", RETRY_AFTER_SECONDS, int)
        _read(values, env, "test_endpoints", TEST_ENDPOINTS, _parse_bool)
        _read(values, env, "claim_spread", CLAIM_SPREAD, int)
        _read(values, env, "auth", AUTH, _parse_bool)
        values.update(overrides)
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        """Raise `SettingsError` for values that would break the contract or the lease."""
        if not self.table_name:
            raise SettingsError(f"{TABLE_NAME} must not be empty")
        if not 0 < self.wait_seconds <= MAX_WAIT_SECONDS:
            raise SettingsError(
                f"{WAIT_SECONDS}={self.wait_seconds} is invalid: use more than 0 and at most "
                f"{MAX_WAIT_SECONDS} seconds, which keeps a reply inside API Gateway's "
                f"{GATEWAY_TIMEOUT_SECONDS:g} s limit"
            )
        if self.stream_limit < 1:
            raise SettingsError(f"{STREAM_LIMIT}={self.stream_limit} is invalid: use 1 or more")
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise SettingsError(
                f"{BATCH_SIZE}={self.batch_size} is invalid: use 1 to {MAX_BATCH_SIZE}"
            )
        # A stream is renewed when a request starts, so the lease must outlast the longest
        # poll. Otherwise a stream could expire while its own request is still waiting.
        if self.lease_seconds <= self.wait_seconds + 1:
            raise SettingsError(
                f"{LEASE_SECONDS}={self.lease_seconds} is invalid: it must exceed "
                f"{WAIT_SECONDS} ({self.wait_seconds}) by more than 1 second"
            )
        if self.retention_days <= 0:
            raise SettingsError(f"{RETENTION_DAYS}={self.retention_days} must be positive")
        if not 0 < self.poll_min_seconds <= self.poll_max_seconds:
            raise SettingsError(
                f"{POLL_MIN_SECONDS} and {POLL_MAX_SECONDS} must satisfy 0 < min <= max"
            )
        if self.retry_after_seconds < 1:
            raise SettingsError(f"{RETRY_AFTER_SECONDS} must be at least 1")
        if self.claim_spread < 1:
            raise SettingsError(f"{CLAIM_SPREAD} must be at least 1")

    @property
    def retention_seconds(self) -> int:
        return int(self.retention_days * 86400)


def _read(
    values: dict[str, object],
    env: Mapping[str, str],
    field: str,
    name: str,
    parse: "type[str] | type[int] | type[float] | _BoolParser",
) -> None:
    raw = env.get(name)
    if raw is None or raw == "":
        return
    try:
        values[field] = parse(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is invalid: {exc}") from exc


class _BoolParser:
    def __call__(self, raw: str) -> bool:
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "on", "yes"):
            return True
        if lowered in ("0", "false", "off", "no"):
            return False
        raise ValueError("expected on/off, true/false, yes/no or 1/0")


_parse_bool = _BoolParser()


def parse_flag(name: str, raw: str) -> bool:
    """Parse the on/off setting `name`; raise `SettingsError` naming it when `raw` is invalid."""
    try:
        return _parse_bool(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is invalid: {exc}") from exc

"""Client wrappers that make DynamoDB behave as it can in production."""

import secrets
from collections.abc import Callable
from typing import Any


class ReplayingClient:
    """A DynamoDB client that sends each call of `methods` twice and returns the second reply.

    That is what botocore does when the first attempt was applied but its reply timed out.
    """

    def __init__(
        self, client: Any, methods: frozenset[str] = frozenset({"batch_execute_statement"})
    ) -> None:
        self._client = client
        self._methods = methods

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if name not in self._methods:
            return method
        return _replayed(name, method)


def _replayed(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    def call(**kwargs: Any) -> Any:
        if name == "transact_write_items":
            # botocore fills in one idempotency token per call and reuses it on retries.
            kwargs.setdefault("ClientRequestToken", secrets.token_hex(16))
        method(**kwargs)
        return method(**kwargs)

    return call

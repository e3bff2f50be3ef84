"""Client wrappers that make DynamoDB behave as it can in production."""

from typing import Any


class ReplayingClient:
    """A DynamoDB client that sends every BatchExecuteStatement twice and returns the second reply.

    That is what botocore does when the first attempt was applied but its reply timed out.
    """

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def batch_execute_statement(self, **kwargs: Any) -> Any:
        self._client.batch_execute_statement(**kwargs)
        return self._client.batch_execute_statement(**kwargs)

"""Domain errors. `chalicelib.http` is the one place that turns them into HTTP replies."""


class PixStreamError(Exception):
    """Base class of every error this service reports to a client."""


class InvalidIspb(PixStreamError):
    def __init__(self, value: str) -> None:
        super().__init__(f"ISPB {value!r} is invalid: it must be exactly 8 digits")
        self.value = value


class InvalidNumber(PixStreamError):
    def __init__(self, value: str, maximum: int) -> None:
        super().__init__(f"number {value!r} is invalid: it must be an integer from 1 to {maximum}")
        self.value = value


class InvalidFormat(PixStreamError):
    def __init__(self, value: str) -> None:
        super().__init__(f"format {value!r} is invalid: the only supported value is 'multipart'")
        self.value = value


class NotAcceptable(PixStreamError):
    def __init__(self, accept: str, reason: str | None = None) -> None:
        super().__init__(
            f"Accept {accept!r} cannot be served: "
            + (reason or "use application/json for one message or multipart/json for up to 10")
        )
        self.accept = accept


class StreamNotFound(PixStreamError):
    def __init__(self, ispb: str, link_id: str) -> None:
        super().__init__(f"stream {link_id!r} was not found for ISPB {ispb}")
        self.link_id = link_id


class StreamGone(PixStreamError):
    """The stream was closed, expired, or the link was superseded by a newer one."""

    def __init__(self, link_id: str, reason: str) -> None:
        super().__init__(
            f"stream link {link_id!r} is no longer valid: {reason}; "
            "open a new stream with stream/start"
        )
        self.link_id = link_id
        self.reason = reason


class StreamLimitReached(PixStreamError):
    def __init__(self, ispb: str, limit: int) -> None:
        super().__init__(
            f"ISPB {ispb} already has {limit} open streams: close one with DELETE, "
            "or retry after Retry-After seconds"
        )
        self.ispb = ispb
        self.limit = limit


class StoreUnavailable(PixStreamError):
    """DynamoDB throttled or failed; nothing was lost and the request can be retried."""

    def __init__(self, operation: str, code: str) -> None:
        super().__init__(f"the message store is unavailable ({code} during {operation})")
        self.operation = operation
        self.code = code


class Unauthenticated(PixStreamError):
    """The request carries no API key, or one that is not stored."""

    def __init__(self) -> None:
        super().__init__(
            "the request has no valid API key: send 'Authorization: Bearer <key>' "
            "with a key issued for your ISPB"
        )


class AccessDenied(PixStreamError):
    def __init__(self, ispb: str) -> None:
        super().__init__(f"the API key does not grant access to ISPB {ispb!r}")
        self.ispb = ispb

"""Concurrent stream readers that collect one ISPB's messages into a MessageWriter."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from pixcollect.output import MessageWriter
from pixcollect.protocol import (
    ACCEPT_MULTIPART,
    ACCEPT_SINGLE,
    PULL_NEXT_HEADER,
    Backoff,
    ProtocolError,
    parse_batch,
    parse_retry_after,
    problem_detail,
    resolve_link,
)

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


class FatalError(Exception):
    """An error that retrying cannot fix, so the collector closes its streams and stops."""


@dataclass(frozen=True)
class CollectorSettings:
    """The API, the ISPB, the reply format and the stop conditions. Times are in seconds."""

    base_url: str
    ispb: str
    streams: int = 6
    multipart: bool = True
    max_messages: int | None = None
    duration: float | None = None
    close_timeout: float = 5.0


@dataclass
class StreamState:
    """One stream's newest ``Pull-Next`` link and its run of failed attempts."""

    index: int
    link: httpx.URL | None = None
    failures: int = 0
    backoff: Backoff = field(default_factory=Backoff)
    # Set when writing the stream's newest batch failed, so closing must not confirm it.
    unwritten: bool = False


class Collector:
    """Reads ``settings.streams`` streams concurrently until stopped.

    Each stream writes a batch before it follows the batch's ``Pull-Next`` link, because
    following the link confirms the batch to the server, which then never delivers it
    again. On stop, each open stream's newest link is deleted, which confirms the last
    written batch and frees the stream's slot at once.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        writer: MessageWriter,
        settings: CollectorSettings,
        *,
        sleep: Sleep = asyncio.sleep,
        backoff_factory: Callable[[], Backoff] = Backoff,
    ) -> None:
        self._client = client
        self._writer = writer
        self._settings = settings
        self._sleep = sleep
        self._base_url = httpx.URL(settings.base_url)
        self._start_url = self._base_url.join(f"/api/pix/{settings.ispb}/stream/start")
        self._accept = ACCEPT_MULTIPART if settings.multipart else ACCEPT_SINGLE
        self._streams = [
            StreamState(index, backoff=backoff_factory())
            for index in range(1, settings.streams + 1)
        ]
        self._stop_requested = asyncio.Event()

    @property
    def written(self) -> int:
        """Messages written in this run, after dedup."""
        return self._writer.written

    @property
    def open_streams(self) -> int:
        """Streams that have a ``Pull-Next`` link to follow."""
        return sum(1 for stream in self._streams if stream.link is not None)

    def stop(self) -> None:
        """Ask ``run`` to close the streams and return. Safe to call more than once."""
        self._stop_requested.set()

    async def run(self) -> None:
        """Collect until ``stop``, ``max_messages`` or ``duration``, then close every stream.

        Raises FatalError (after closing the streams) when a stream hits an error that
        retrying cannot fix.
        """
        logger.info(
            "collecting for ISPB %s from %s with %d streams",
            self._settings.ispb,
            self._base_url,
            len(self._streams),
        )
        readers = [
            asyncio.create_task(self._read_stream(stream), name=f"stream-{stream.index}")
            for stream in self._streams
        ]
        stop_waiter = asyncio.create_task(self._stop_requested.wait())
        try:
            await asyncio.wait(
                [*readers, stop_waiter],
                timeout=self._settings.duration,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            for task in [*readers, stop_waiter]:
                task.cancel()
            outcomes = await asyncio.gather(*readers, return_exceptions=True)
            await self._close_streams()

        for outcome in outcomes:
            if isinstance(outcome, Exception):
                raise outcome

    async def _read_stream(self, stream: StreamState) -> None:
        # The check keeps a stopping collector from claiming another batch in the moment
        # before run() cancels this task.
        while not self._stop_requested.is_set():
            url = stream.link if stream.link is not None else self._start_url
            try:
                response = await self._client.get(url, headers={"Accept": self._accept})
            except httpx.RequestError as exc:
                # Repeating a link is safe, because the server returns the same batch again.
                await self._retry_later(stream, f"GET failed: {exc!r}", None)
                continue
            await self._handle_reply(stream, response)

    async def _handle_reply(self, stream: StreamState, response: httpx.Response) -> None:
        status = response.status_code
        if status == httpx.codes.OK:
            await self._accept_batch(stream, response)
        elif status == httpx.codes.NO_CONTENT:
            self._follow(stream, response)
        elif status in (httpx.codes.TOO_MANY_REQUESTS, httpx.codes.SERVICE_UNAVAILABLE):
            delay = parse_retry_after(response.headers.get("Retry-After"))
            await self._retry_later(stream, _describe(response), delay)
        elif status == httpx.codes.GONE or (
            status == httpx.codes.NOT_FOUND and stream.link is not None
        ):
            # A start can return 410 too, when the new stream expires during its first read.
            logger.warning(
                "stream %d: %s. Starting a new stream.", stream.index, _describe(response)
            )
            stream.link = None
        elif status >= httpx.codes.INTERNAL_SERVER_ERROR:
            await self._retry_later(stream, _describe(response), None)
        else:
            raise FatalError(f"stream {stream.index}: {_describe(response)}")

    async def _accept_batch(self, stream: StreamState, response: httpx.Response) -> None:
        try:
            messages = parse_batch(response.content)
        except ProtocolError as exc:
            # Only a broken server or proxy sends this. The batch stays unconfirmed, and
            # retrying the link requests the same batch again.
            await self._retry_later(stream, f"invalid reply: {exc}", None)
            return
        next_link = self._next_link(response)

        try:
            written = self._writer.write_batch(messages)
        except OSError as exc:
            stream.unwritten = True
            raise FatalError(f"writing the output failed: {exc}") from exc
        logger.debug("stream %d: wrote %d of %d messages", stream.index, written, len(messages))

        self._advance(stream, next_link)
        limit = self._settings.max_messages
        if limit is not None and self.written >= limit:
            logger.info("wrote %d messages, which reaches the limit of %d", self.written, limit)
            self.stop()

    def _follow(self, stream: StreamState, response: httpx.Response) -> None:
        self._advance(stream, self._next_link(response))

    def _next_link(self, response: httpx.Response) -> httpx.URL:
        try:
            return resolve_link(self._base_url, response.headers.get(PULL_NEXT_HEADER))
        except ProtocolError as exc:
            raise FatalError(str(exc)) from exc

    def _advance(self, stream: StreamState, next_link: httpx.URL) -> None:
        if stream.link is None:
            logger.info("stream %d: opened", stream.index)
        if stream.failures:
            logger.info(
                "stream %d: recovered after %d failed attempts", stream.index, stream.failures
            )
            stream.failures = 0
            stream.backoff.reset()
        stream.link = next_link

    async def _retry_later(self, stream: StreamState, reason: str, delay: float | None) -> None:
        """Wait ``delay`` seconds (or the backoff's delay when None) before the next attempt.

        Logs the 1st, 2nd, 4th, 8th... consecutive failure at WARNING and the others at
        DEBUG, so that a long outage does not flood the log.
        """
        if delay is None:
            delay = stream.backoff.next_delay()
        stream.failures += 1
        target = "stream/start" if stream.link is None else "the same link"
        level = logging.WARNING if stream.failures & (stream.failures - 1) == 0 else logging.DEBUG
        logger.log(
            level,
            "stream %d: %s. Retrying %s in %.1f s (failure %d).",
            stream.index,
            reason,
            target,
            delay,
            stream.failures,
        )
        await self._sleep(delay)

    async def _close_streams(self) -> None:
        await asyncio.gather(
            *(self._close_stream(stream) for stream in self._streams if stream.link is not None)
        )

    async def _close_stream(self, stream: StreamState) -> None:
        link = stream.link
        if link is None:
            return
        stream.link = None
        try:
            response = await self._client.delete(link, timeout=self._settings.close_timeout)
            if response.status_code == httpx.codes.GONE and stream.unwritten:
                logger.warning(
                    "stream %d: left open because its newest batch was not written. The server "
                    "delivers that batch again after the stream's lease expires.",
                    stream.index,
                )
                return
            if response.status_code == httpx.codes.GONE:
                # The GET that stopping cancelled may have claimed a batch on this link, so
                # the server issued a newer link that only this client can close.
                response = await self._close_after_cancelled_read(stream, link) or response
        except httpx.RequestError as exc:
            logger.warning(
                "stream %d: DELETE failed: %r. The server frees the stream when its lease "
                "expires, and delivers its unconfirmed messages again.",
                stream.index,
                exc,
            )
            return
        if response.status_code == httpx.codes.OK:
            logger.info("stream %d: closed", stream.index)
        elif response.status_code in (httpx.codes.NOT_FOUND, httpx.codes.GONE):
            logger.info("stream %d: already closed (%s)", stream.index, _describe(response))
        else:
            logger.warning("stream %d: DELETE failed: %s", stream.index, _describe(response))

    async def _close_after_cancelled_read(
        self, stream: StreamState, link: httpx.URL
    ) -> httpx.Response | None:
        """Fetch the batch a cancelled GET claimed on `link`, write it, and close the stream.

        Repeating the GET returns that batch at once. Returns the reply to the DELETE on its
        ``Pull-Next``, or None when `link` delivered nothing more (the stream had ended).
        """
        timeout = self._settings.close_timeout
        repeated = await self._client.get(link, headers={"Accept": self._accept}, timeout=timeout)
        if repeated.status_code != httpx.codes.OK:
            return None
        try:
            messages = parse_batch(repeated.content)
            written = self._writer.write_batch(messages)
        except (ProtocolError, OSError) as exc:
            logger.warning(
                "stream %d: could not keep the batch a cancelled read claimed: %s. The server "
                "delivers it again after the stream's lease expires.",
                stream.index,
                exc,
            )
            return None
        logger.info(
            "stream %d: wrote %d of %d messages a cancelled read had claimed",
            stream.index,
            written,
            len(messages),
        )
        return await self._client.delete(self._next_link(repeated), timeout=timeout)


def _describe(response: httpx.Response) -> str:
    return f"{response.request.method} returned {response.status_code}: {problem_detail(response)}"

"""Command-line entry point: ``pix-collect`` and ``python -m pixcollect``."""

import argparse
import asyncio
import logging
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from pixcollect.collector import Collector, CollectorSettings, FatalError
from pixcollect.output import MessageWriter
from pixcollect.progress import ProgressAwareHandler, ProgressLine, RateMeter, format_progress
from pixcollect.protocol import ISPB_PATTERN

logger = logging.getLogger("pixcollect")

EXIT_OK = 0
EXIT_FAILURE = 1
PROGRESS_INTERVAL = 0.5  # seconds between redraws of the progress line
CONNECT_TIMEOUT = 10.0  # seconds


def main(
    argv: Sequence[str] | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> int:
    """Run the collector and return the exit status.

    ``transport`` replaces the network, for tests. Argument errors exit with status 2
    through argparse.
    """
    args = build_parser().parse_args(argv)
    progress = _configure_logging(args.quiet, args.verbose)
    settings = CollectorSettings(
        base_url=args.base_url,
        ispb=args.ispb,
        streams=args.streams,
        multipart=args.multipart,
        max_messages=args.max_messages,
        duration=args.duration,
    )

    try:
        return _run(settings, args.output, args.timeout, progress, transport)
    except KeyboardInterrupt:
        # SIGINT arrived while the collector's own handler was not installed: before the
        # first stream opened or after the last one closed, so there is nothing to close.
        logger.info("interrupted")
        return EXIT_OK
    finally:
        if progress is not None:
            progress.close()


def _run(
    settings: CollectorSettings,
    output: Path | None,
    read_timeout: float,
    progress: ProgressLine | None,
    transport: httpx.AsyncBaseTransport | None,
) -> int:
    try:
        writer = _open_writer(output)
    except OSError as exc:
        logger.error("cannot open the output file %s: %s", output, exc)
        return EXIT_FAILURE

    with writer:
        try:
            asyncio.run(_collect(settings, writer, read_timeout, progress, transport))
        except FatalError as exc:
            logger.error("stopped: %s", exc)
            return EXIT_FAILURE
        finally:
            if progress is not None:
                progress.close()
    logger.info(
        "stopped after writing %d messages (%d duplicates dropped)",
        writer.written,
        writer.duplicates,
    )
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pix-collect",
        description=(
            "Collect the Pix messages received by one ISPB from a pix-stream API and append "
            "them to a JSON Lines file, one message per line, each endToEndId once."
        ),
    )
    _add_source_options(parser)
    _add_output_options(parser)
    _add_stop_options(parser)
    return parser


def _add_source_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ispb", required=True, type=_ispb, help="8-digit ISPB of the receiving PSP"
    )
    parser.add_argument(
        "--base-url",
        default="http://127.0.0.1:8000",
        type=_base_url,
        help="scheme, host and port of the API (default: %(default)s)",
    )
    parser.add_argument(
        "--streams",
        type=_positive_int,
        default=6,
        help="number of concurrent streams (default: %(default)s). The server allows 6 per "
        "ISPB and rejects more with 429, which is retried.",
    )
    format_group = parser.add_mutually_exclusive_group()
    format_group.add_argument(
        "--multipart",
        dest="multipart",
        action="store_true",
        default=True,
        help="request up to 10 messages per reply with Accept: multipart/json (the default)",
    )
    format_group.add_argument(
        "--single",
        dest="multipart",
        action="store_false",
        help="request one message per reply with Accept: application/json",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        default=30.0,
        help="read timeout of one request in seconds, which must exceed the server's "
        "long-poll wait (default: %(default)s)",
    )


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        help="JSON Lines file to append to (default: standard output). Messages whose "
        "endToEndId is already in the file are not written again.",
    )
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="log only warnings and errors, and show no progress line",
    )
    verbosity.add_argument("-v", "--verbose", action="store_true", help="log every batch and retry")


def _add_stop_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-messages",
        type=_positive_int,
        help="stop after writing at least this many messages. Batches are written whole, "
        "so a run may write fewer than 10 more per stream.",
    )
    parser.add_argument("--duration", type=_positive_float, help="stop after this many seconds")


async def _collect(
    settings: CollectorSettings,
    writer: MessageWriter,
    read_timeout: float,
    progress: ProgressLine | None,
    transport: httpx.AsyncBaseTransport | None,
) -> None:
    timeout = httpx.Timeout(CONNECT_TIMEOUT, read=read_timeout)
    async with httpx.AsyncClient(timeout=timeout, transport=transport) as client:
        collector = Collector(client, writer, settings)
        _install_signal_handlers(collector)
        progress_task = None
        if progress is not None:
            progress_task = asyncio.create_task(_show_progress(collector, progress, settings))
        try:
            await collector.run()
        finally:
            if progress_task is not None:
                progress_task.cancel()
            _remove_signal_handlers()


def _install_signal_handlers(collector: Collector) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):

        def request_stop(signum: int = signum) -> None:
            logger.info("received %s, closing the streams", signal.Signals(signum).name)
            collector.stop()

        loop.add_signal_handler(signum, request_stop)


def _remove_signal_handlers() -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(signum)


async def _show_progress(
    collector: Collector, progress: ProgressLine, settings: CollectorSettings
) -> None:
    meter = RateMeter()
    while True:
        rate = meter.update(time.monotonic(), collector.written)
        progress.show(
            format_progress(collector.written, rate, collector.open_streams, settings.streams)
        )
        await asyncio.sleep(PROGRESS_INTERVAL)


def _configure_logging(quiet: bool, verbose: bool) -> ProgressLine | None:
    """Send log records to stderr, and return the progress line when stderr is a terminal."""
    progress = None
    handler: logging.Handler
    if not quiet and sys.stderr.isatty():
        progress = ProgressLine(sys.stderr)
        handler = ProgressAwareHandler(sys.stderr, progress)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))

    logger.handlers[:] = [handler]
    logger.propagate = False
    if quiet:
        logger.setLevel(logging.WARNING)
    elif verbose:
        logger.setLevel(logging.DEBUG)
    else:
        logger.setLevel(logging.INFO)
    return progress


def _open_writer(output: Path | None) -> MessageWriter:
    if output is None or str(output) == "-":
        return MessageWriter(sys.stdout.buffer)
    return MessageWriter.append_to(output)


def _ispb(value: str) -> str:
    if not ISPB_PATTERN.fullmatch(value):
        raise argparse.ArgumentTypeError(f"invalid ISPB {value!r}: expected exactly 8 digits")
    return value


def _base_url(value: str) -> str:
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as exc:
        raise argparse.ArgumentTypeError(f"invalid base URL {value!r}: {exc}") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise argparse.ArgumentTypeError(
            f"invalid base URL {value!r}: expected http:// or https:// and a host"
        )
    return value


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"invalid value {value!r}: expected an integer >= 1")
    return number


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if not number > 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"invalid value {value!r}: expected a number > 0")
    return number

"""Serve the app like `chalice local`, with three defects of chalice local 1.34 fixed.

1. Chalice keeps `current_request` and `lambda_context` as attributes of the app object,
   which every request thread shares; a long-polling handler could read another request's
   headers. Here both are per thread.
2. The request handler leaves Nagle's algorithm on and writes headers and body separately,
   so each keep-alive reply waits about 40 ms for the client's delayed ACK. Here
   `TCP_NODELAY` is set on accepted sockets.
3. The listening socket queues only 5 waiting connections (the standard library's default),
   so bursts of long polls get refused or stall. Here the queue holds 1,024.

Lambda never imports this module: there each process serves one request at a time.
"""

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from chalice.app import Chalice
from chalice.cli.factory import CLIFactory
from chalice.local import ChaliceRequestHandler, LocalDevServer, ThreadedHTTPServer

from chalicelib.logs import use_json_logs
from localdev.schema import PROJECT_DIR

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("localdev.access")

REQUEST_QUEUE_SIZE = 1024


class NoDelayRequestHandler(ChaliceRequestHandler):
    disable_nagle_algorithm = True

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # The standard library writes a plain-text line to stderr; this one goes through
        # logging, so it comes out as JSON like every other line.
        status = int(code) if str(code).isdigit() else None
        access_logger.info("%s %s %s", self.command, self.path, code, extra={"status": status})

    def log_message(self, format: str, *args: Any) -> None:
        access_logger.warning(format, *args)


class DeepQueueServer(ThreadedHTTPServer):
    request_queue_size = REQUEST_QUEUE_SIZE
    daemon_threads = True
    allow_reuse_address = True


class _PerThreadRequestState:
    """Mixin giving an app a per-thread `current_request` and `lambda_context`."""

    _state = threading.local()

    @property
    def current_request(self) -> Any:
        return getattr(self._state, "current_request", None)

    @current_request.setter
    def current_request(self, value: Any) -> None:
        self._state.current_request = value

    @property
    def lambda_context(self) -> Any:
        return getattr(self._state, "lambda_context", None)

    @lambda_context.setter
    def lambda_context(self, value: Any) -> None:
        self._state.lambda_context = value


def make_request_state_per_thread(app: Chalice) -> None:
    """Give `app` per-thread request state without changing its own class for Lambda."""
    if isinstance(app, _PerThreadRequestState):
        return
    app.__class__ = type(f"PerThread{type(app).__name__}", (_PerThreadRequestState, type(app)), {})


def create_server(
    host: str, port: int, stage: str = "dev", project_dir: Path = PROJECT_DIR
) -> LocalDevServer:
    """Load the app with its stage's settings, as `chalice local` does, and build the server."""
    factory = CLIFactory(str(project_dir), environ=os.environ)
    config = factory.create_config_obj(chalice_stage_name=stage)
    app = config.chalice_app
    make_request_state_per_thread(app)
    return LocalDevServer(
        app,
        config,
        host,
        port,
        handler_cls=NoDelayRequestHandler,
        server_cls=DeepQueueServer,
    )


def serve(host: str, port: int, stage: str) -> None:
    """Serve until SIGINT or SIGTERM."""
    sys.path.insert(0, str(PROJECT_DIR))
    server = create_server(host, port, stage)

    def stop(signum: int, frame: FrameType | None) -> None:
        logger.info("received signal %d, stopping the API server", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logger.info("serving the API on http://%s:%d (stage %s)", host, port, stage)
    server.server.serve_forever()
    server.server.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the API with a fixed chalice local.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="TCP port to listen on")
    parser.add_argument("--stage", default="dev", help="Chalice stage in .chalice/config.json")
    args = parser.parse_args(argv)
    use_json_logs()
    serve(args.host, args.port, args.stage)


if __name__ == "__main__":
    main()

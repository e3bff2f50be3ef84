"""Serve the app like `chalice local`, with three defects of chalice local 1.34 fixed.

1. Chalice keeps `current_request` and `lambda_context` as attributes of the app object,
   which every request thread shares; a long-polling handler could read another request's
   headers. Here both are per thread.
2. The request handler leaves Nagle's algorithm on and writes headers and body separately,
   so each keep-alive reply waits about 40 ms for the client's delayed ACK. Here
   `TCP_NODELAY` is set on accepted sockets.
3. The listening socket queues only 5 waiting connections (the standard library's default),
   so bursts of long polls get refused or stall. Here the queue has room for 1,024.

It also compresses replies, sends API Gateway's own error replies as the deployed API
Gateway does (see localdev.gateway), and runs the app's scheduled functions on their rate
(see localdev.schedules).

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
from chalice.local import (
    ChaliceRequestHandler,
    ForbiddenError,
    LocalDevServer,
    LocalGatewayException,
    NotAuthorizedError,
    ThreadedHTTPServer,
)

from chalicelib.logs import use_json_logs
from localdev import gateway
from localdev.schedules import start_schedules
from localdev.schema import PROJECT_DIR

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("localdev.access")

REQUEST_QUEUE_SIZE = 1024
# Overrides the stage's minimum_compression_size for the local server (bytes; "off" disables).
MIN_COMPRESSION_SIZE_VARIABLE = "PIX_LOCAL_MIN_COMPRESSION_SIZE"


class DeepQueueServer(ThreadedHTTPServer):
    request_queue_size = REQUEST_QUEUE_SIZE
    daemon_threads = True
    allow_reuse_address = True
    # Smallest reply body that is gzipped for clients accepting gzip; None never compresses.
    minimum_compression_size: int | None = None


class GatewayRequestHandler(ChaliceRequestHandler):
    """chalice local's handler with TCP_NODELAY, compression and configured gateway replies."""

    disable_nagle_algorithm = True
    server: DeepQueueServer

    def __getattr__(self, name: str) -> Any:
        # chalice local defines do_GET and a few more, and http.server replies to any other
        # method (TRACE, QUERY, ...) with an HTML 501. Through the app it gets a 405 instead.
        if name.startswith("do_"):
            return self._generic_handle
        raise AttributeError(name)

    def _parse_payload(self) -> tuple[dict[str, str], bytes | None]:
        # chalice local keeps only the first of repeated headers. HTTP reads a repeated list
        # header, such as Accept, as one comma-separated list, and API Gateway passes all the
        # values on (in multiValueHeaders), so join them.
        headers, body = super()._parse_payload()
        for name in set(self.headers.keys()):
            values = self.headers.get_all(name) or []
            if len(values) > 1 and name.lower() != "cookie":
                headers[name] = ", ".join(values)
        return headers, body

    def _send_http_response_with_body(
        self, code: int, headers: dict[str, Any], body: str | bytes
    ) -> None:
        if isinstance(body, str):
            body = body.encode("utf-8")
        body = gateway.compress_reply(
            code,
            headers,
            body,
            self.headers.get("Accept-Encoding"),
            self.server.minimum_compression_size,
        )
        super()._send_http_response_with_body(code, headers, body)

    def _generic_handle(self) -> None:
        try:
            super()._generic_handle()
        except UnicodeEncodeError:
            # chalice local quotes the Authorization header, encoded as ASCII, in its reply to an
            # unknown route. A non-ASCII header fails there, so send the unknown-route reply.
            self._send_gateway_response("MISSING_AUTHENTICATION_TOKEN", {})
        except ConnectionError:
            raise  # the client went away; there is no one to reply to
        except Exception:
            # The app turns a view's exception into a 500 reply, so one that gets here came from
            # the authorizer (a store error, say). API Gateway sends AUTHORIZER_FAILURE then.
            logger.exception("authorizer failed for %s %s", self.command, self.path)
            self._send_gateway_response("AUTHORIZER_FAILURE", {})

    # chalice local binds these to its own _generic_handle; rebind them to the one above.
    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # The standard library writes a plain-text line to stderr; this one goes through
        # logging, so it comes out as JSON like every other line.
        status = int(code) if str(code).isdigit() else None
        # A request line that failed to parse leaves command and path unset.
        command = getattr(self, "command", None) or "-"
        path = getattr(self, "path", None) or "-"
        access_logger.info("%s %s %s", command, path, code, extra={"status": status})

    def log_message(self, format: str, *args: Any) -> None:
        access_logger.warning(format, *args)

    def _send_error_response(self, error: LocalGatewayException) -> None:
        if not self._send_gateway_response(_gateway_response_type(error), error.headers):
            super()._send_error_response(error)

    def _send_gateway_response(self, response_type: str, extra_headers: dict[str, Any]) -> bool:
        """Send the reply infra/gateway-responses.json configures; False if it has none."""
        configured = gateway.gateway_response(response_type)
        if configured is None:
            return False
        status, headers, body = configured
        self._send_http_response(status, {**extra_headers, **headers}, body)
        return True


def _gateway_response_type(error: LocalGatewayException) -> str:
    """Name the API Gateway response type that a chalice local gateway error stands for."""
    if isinstance(error, NotAuthorizedError):
        return "UNAUTHORIZED"
    if isinstance(error, ForbiddenError):
        if error.headers.get("x-amzn-ErrorType") == "AccessDeniedException":
            return "ACCESS_DENIED"
        # chalice local, like API Gateway, rejects an unknown route this way.
        return "MISSING_AUTHENTICATION_TOKEN"
    return "DEFAULT_5XX"


class _PerThreadRequestState:
    """Mixin giving an app a per-thread `current_request` and `lambda_context`.

    Each app object has its own `threading.local`, so two apps in one process (tests, for
    instance) never see each other's requests.
    """

    _request_state: threading.local

    @property
    def current_request(self) -> Any:
        return getattr(self._request_state, "current_request", None)

    @current_request.setter
    def current_request(self, value: Any) -> None:
        self._request_state.current_request = value

    @property
    def lambda_context(self) -> Any:
        return getattr(self._request_state, "lambda_context", None)

    @lambda_context.setter
    def lambda_context(self, value: Any) -> None:
        self._request_state.lambda_context = value


def make_request_state_per_thread(app: Chalice) -> None:
    """Give `app` per-thread request state without changing its own class for Lambda."""
    if isinstance(app, _PerThreadRequestState):
        return
    app._request_state = threading.local()  # type: ignore[attr-defined]
    app.__class__ = type(f"PerThread{type(app).__name__}", (_PerThreadRequestState, type(app)), {})


def create_server(
    host: str, port: int, stage: str = "dev", project_dir: Path = PROJECT_DIR
) -> LocalDevServer:
    """Load the app with its stage's settings, as `chalice local` does, and build the server."""
    factory = CLIFactory(str(project_dir), environ=os.environ)
    config = factory.create_config_obj(chalice_stage_name=stage)
    app = config.chalice_app
    make_request_state_per_thread(app)
    server = LocalDevServer(
        app,
        config,
        host,
        port,
        handler_cls=GatewayRequestHandler,
        server_cls=DeepQueueServer,
    )
    server.server.minimum_compression_size = _minimum_compression_size(config)
    return server


def _minimum_compression_size(config: Any) -> int | None:
    """Return the compression threshold: the override variable, else the stage's setting."""
    override = os.environ.get(MIN_COMPRESSION_SIZE_VARIABLE, "").strip()
    if override.lower() == "off":
        return None
    if override:
        return int(override)
    configured = config.minimum_compression_size
    return None if configured is None else int(configured)


def serve(host: str, port: int, stage: str) -> None:
    """Serve until SIGINT or SIGTERM."""
    sys.path.insert(0, str(PROJECT_DIR))
    server = create_server(host, port, stage)
    stopped = threading.Event()
    start_schedules(server.app_object, stopped)

    def stop(signum: int, frame: FrameType | None) -> None:
        logger.info("received signal %d, stopping the API server", signum)
        stopped.set()
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

"""Routes of the Pix stream API. The logic lives in chalicelib."""

import logging
import time
from collections.abc import Callable

from chalice import AuthResponse, Chalice, Rate, Response
from chalice.app import AuthRequest, Request

from chalicelib import auth, docs, http, logs, observability, tracing
from chalicelib.errors import NotAcceptable, PixStreamError
from chalicelib.runtime import auth_enabled, get_runtime, test_endpoints_enabled
from chalicelib.streams import ReadResult, parse_link_id

# Lambda's log lines are JSON from the start; the local server sets this up itself.
if tracing.in_lambda():
    logs.use_json_logs()
tracing.configure()

# Chalice's own handler on app.log writes plain text; its records go to the root logger.
app = Chalice(app_name="pix-stream", configure_logs=False)
app.log.setLevel(logging.INFO)
logger = logging.getLogger("pix_stream.app")

MAX_GENERATED_MESSAGES = 1000
# Seconds kept free between the end of a long poll and the end of the Lambda invocation,
# for the commit write and the reply.
LAMBDA_MARGIN_SECONDS = 1.5


def _deadline(wait_seconds: float) -> float:
    """Return the monotonic time at which a long poll must stop waiting."""
    budget = wait_seconds
    context = app.lambda_context
    if context is not None:
        remaining = context.get_remaining_time_in_millis() / 1000 - LAMBDA_MARGIN_SECONDS
        budget = max(0.0, min(budget, remaining))
    return time.monotonic() + budget


metrics = observability.MetricsWriter()

AUTH_REQUIRED = auth_enabled()
# API Gateway caches an authorizer's result per token for this long.
AUTH_CACHE_SECONDS = 300
stream_authorizer = None

if AUTH_REQUIRED:

    @app.authorizer(ttl_seconds=AUTH_CACHE_SECONDS)
    def api_key_authorizer(auth_request: AuthRequest) -> AuthResponse:
        """Map the bearer key to its ISPB; the views compare it with the ISPB in the path.

        Every route is allowed, so that the view returns 401 and 403 as problem documents
        instead of API Gateway's plain JSON denial.
        """
        ispb = auth.authenticate(get_runtime().store, auth_request.token) or ""
        return AuthResponse(
            routes=["*"], principal_id=ispb or "unknown-key", context={"ispb": ispb}
        )

    stream_authorizer = api_key_authorizer


# Chalice replies to an unrouted method (405) or an unsupported Content-Type (415) itself, with
# its own {"Code", "Message"} body. These replies become problem documents like every other error.
CHALICE_ERRORS = {
    405: ("method-not-allowed", "Method not allowed"),
    415: ("unsupported-media-type", "Unsupported media type"),
}


@app.middleware("http")
def chalice_errors_as_problems(
    event: Request, get_response: Callable[[Request], Response]
) -> Response:
    response = get_response(event)
    known = CHALICE_ERRORS.get(response.status_code)
    if known is None or not isinstance(response.body, dict) or "Code" not in response.body:
        return response
    kind, title = known
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-type"}
    detail = str(response.body.get("Message", title))
    return http.problem_response(response.status_code, kind, title, detail, headers)


def _granted_ispb(request: Request) -> str | None:
    """Return the ISPB the request's API key grants, as the authorizer put it in the context."""
    authorizer = (request.context or {}).get("authorizer") or {}
    granted: str | None = authorizer.get("ispb")
    return granted


def _check_access(granted_ispb: str | None, ispb: str) -> None:
    if AUTH_REQUIRED:
        auth.check_access(granted_ispb, ispb)


def _handle(operation: str, ispb: str, view: Callable[[], Response]) -> Response:
    """Run a view, turning domain errors into problem documents and anything else into 500.

    Every request ends with one metrics line saying what it did.
    """
    record = observability.start_record(operation, ispb)
    with tracing.request(operation) as span:
        try:
            response = view()
        except PixStreamError as error:
            response = http.error_response(error, get_runtime().settings.retry_after_seconds)
        except Exception:
            logger.exception("unhandled error in %s for ISPB %r", operation, ispb)
            response = http.problem_response(
                500, "internal-error", "Internal error", "the request failed; it can be retried"
            )
        record.status = response.status_code
        observability.annotate_trace(span, record)
    metrics.write(record)
    return response


def _read(operation: str, ispb: str, read: Callable[[str, int, float], ReadResult]) -> Response:
    """Run a stream read for the current request and build its reply."""
    # chalice local shares current_request between threads, so read it once, here.
    request = app.current_request
    accept = http.accept_header(request.to_original_event())
    format_param = (request.query_params or {}).get("format")
    granted_ispb = _granted_ispb(request)

    def view() -> Response:
        settings = get_runtime().settings
        _check_access(granted_ispb, ispb)
        http.validate_ispb(ispb)
        multipart = http.wants_multipart(accept, format_param)
        batch = settings.batch_size if multipart else 1
        result = read(ispb, batch, _deadline(settings.wait_seconds))
        _describe(result)
        if not multipart and len(result.bodies) > 1:
            # A repeated read returns the batch its link delivered; one object cannot carry
            # it, and dropping the rest would confirm messages the client never received.
            raise NotAcceptable(
                accept or "",
                f"this link delivered {len(result.bodies)} messages; repeat it with "
                "Accept: multipart/json to receive them again",
            )
        return http.read_response(result, multipart)

    return _handle(operation, ispb, view)


def _describe(result: ReadResult) -> None:
    observability.describe_link(result.stream_id, result.link)
    observability.count("messages", len(result.bodies))


# Requests to the API carry no body, so any Content-Type is accepted (Chalice refuses all
# but application/json with 415 otherwise).
NO_BODY = ["*/*"]

STREAM_START = "/api/pix/{ispb}/stream/start"
STREAM_LINK = "/api/pix/{ispb}/stream/{interationId}"  # the contract's spelling


def stream_route[View: Callable[..., Response]](path: str, method: str) -> Callable[[View], View]:
    route: Callable[[View], View] = app.route(
        path, methods=[method], authorizer=stream_authorizer, content_types=NO_BODY
    )
    return route


@stream_route(STREAM_START, "GET")
def start_stream(ispb: str) -> Response:
    return _read("StartStream", ispb, get_runtime().streams.start)


@stream_route(STREAM_START, "DELETE")
def close_start(ispb: str) -> Response:
    # No stream has the id "start", so this returns 404 like any other unknown id.
    return close_stream(ispb, "start")


@stream_route(STREAM_LINK, "GET")
def continue_stream(ispb: str, interationId: str) -> Response:  # the contract's spelling
    def read(ispb: str, batch: int, deadline: float) -> ReadResult:
        observability.describe_link(*parse_link_id(ispb, interationId))
        return get_runtime().streams.read(ispb, interationId, batch, deadline)

    return _read("ReadStream", ispb, read)


@stream_route(STREAM_LINK, "DELETE")
def close_stream(ispb: str, interationId: str) -> Response:  # the contract's spelling
    granted_ispb = _granted_ispb(app.current_request)

    def view() -> Response:
        _check_access(granted_ispb, ispb)
        http.validate_ispb(ispb)
        observability.describe_link(*parse_link_id(ispb, interationId))
        get_runtime().streams.close(ispb, interationId)
        return http.json_response({}, 200)

    return _handle("CloseStream", ispb, view)


def _create_messages(ispb: str, number: str) -> Response:
    def view() -> Response:
        http.validate_ispb(ispb)
        count = http.parse_number(number, MAX_GENERATED_MESSAGES)
        inserted = get_runtime().insert_generated(ispb, count)
        logger.info("created %d test messages for %s", len(inserted), ispb)
        return http.json_response(
            {"ispb": ispb, "quantidade": len(inserted), "endToEndIds": inserted}, 201
        )

    return _handle("CreateMessages", ispb, view)


TEST_ENDPOINTS = test_endpoints_enabled()

if TEST_ENDPOINTS:

    @app.route("/api/util/msgs/{ispb}/{number}", methods=["POST"], content_types=NO_BODY)
    def create_messages(ispb: str, number: str) -> Response:
        return _create_messages(ispb, number)

    # The same, at the path earlier clients use; API Gateway ignores its trailing slash.
    @app.route("/api/pix/util/msgs/{ispb}/{number}", methods=["POST"], content_types=NO_BODY)
    def create_messages_legacy(ispb: str, number: str) -> Response:
        return _create_messages(ispb, number)


@app.route("/api/openapi.json", methods=["GET"], content_types=NO_BODY)
def openapi_description() -> Response:
    document = docs.openapi_document(test_endpoints=TEST_ENDPOINTS, auth=AUTH_REQUIRED)
    return http.json_response(document, 200)


# API Gateway and the local server drop a trailing slash, so this also serves /api/docs/.
@app.route("/api/docs", methods=["GET"], content_types=NO_BODY)
def swagger_ui() -> Response:
    return Response(
        body=docs.SWAGGER_PAGE,
        status_code=200,
        headers={"Content-Type": "text/html; charset=utf-8"},
    )


@app.route("/api/docs/{asset}", methods=["GET"], content_types=NO_BODY)
def swagger_ui_asset(asset: str) -> Response:
    found = docs.swagger_asset(asset)
    if found is None:
        return http.problem_response(
            404, "asset-not-found", "Asset not found", f"{asset!r} is not a Swagger UI asset"
        )
    body, content_type = found
    headers = {"Content-Type": content_type, "Cache-Control": "public, max-age=86400"}
    return Response(body=body, status_code=200, headers=headers)


@app.schedule(Rate(1, unit=Rate.MINUTES))
def sweep_expired_streams(event: object) -> None:
    """End streams whose lease passed, so their slots and messages return without a start."""
    record = observability.start_record("SweepStreams")
    with tracing.request("SweepStreams") as span:
        freed = get_runtime().streams.sweep()
        observability.annotate_trace(span, record)
    logger.info("sweep freed %d stream slots", freed, extra={"freed": freed})
    metrics.write(record)

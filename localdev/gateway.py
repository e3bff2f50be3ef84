"""Parts of API Gateway's behaviour that `chalice local` lacks, for the local server.

- Compression: with a stage's ``minimum_compression_size`` set, API Gateway gzips a reply body
  of at least that many bytes when the request's ``Accept-Encoding`` accepts gzip. chalice
  local never compresses.
- Gateway responses: API Gateway's own 401 and 403 replies (a request without an
  ``Authorization`` header never reaches the authorizer) are the ones that
  ``infra/gateway-responses.json`` configures. chalice local sends its fixed JSON messages
  instead; here they are rendered from that same file.

The Lambda code path never imports this module.
"""

import gzip
import json
from functools import cache
from pathlib import Path
from typing import Any

from localdev.schema import PROJECT_DIR

GATEWAY_RESPONSES = PROJECT_DIR / "infra" / "gateway-responses.json"
HEADER_PREFIX = "Headers"
# Status codes whose replies never carry a body, so they are never compressed.
BODYLESS_STATUSES = frozenset({204, 304})


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Tell whether an Accept-Encoding header accepts gzip (a q-value of 0 excludes it)."""
    for part in (accept_encoding or "").split(","):
        coding, _, params = part.partition(";")
        if coding.strip().lower() not in ("gzip", "x-gzip"):
            continue
        name, _, value = params.partition("=")
        if name.strip().lower() != "q":
            return True
        try:
            return float(value) > 0
        except ValueError:
            return False
    return False


def compress_reply(
    status: int,
    headers: dict[str, Any],
    body: bytes,
    accept_encoding: str | None,
    minimum_size: int | None,
) -> bytes:
    """Gzip `body` and set Content-Encoding when API Gateway would; return the body to send."""
    if minimum_size is None or status in BODYLESS_STATUSES or not body:
        return body
    if len(body) < minimum_size or not accepts_gzip(accept_encoding):
        return body
    if any(name.lower() == "content-encoding" for name in headers):
        return body
    headers["Content-Encoding"] = "gzip"
    # mtime=0 keeps the compressed bytes the same for the same body.
    return gzip.compress(body, mtime=0)


@cache
def _gateway_responses(path: Path = GATEWAY_RESPONSES) -> dict[str, Any]:
    template = json.loads(path.read_text(encoding="utf-8"))
    responses: dict[str, Any] = template["Resources"]["RestAPI"]["Properties"]["GatewayResponses"]
    return responses


def gateway_response(response_type: str) -> tuple[int, dict[str, str], bytes] | None:
    """Return the status, headers and body configured for a gateway response type, if any."""
    configured = _gateway_responses().get(response_type)
    if configured is None:
        return None
    headers = {
        name: value.strip("'")
        for name, value in configured.get("ResponseParameters", {}).get(HEADER_PREFIX, {}).items()
    }
    body = next(iter(configured.get("ResponseTemplates", {}).values()), "")
    return int(configured["StatusCode"]), headers, body.encode("utf-8")

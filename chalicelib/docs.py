"""The OpenAPI description of the API and the Swagger UI page that renders it.

``openapi.json`` beside this module is the description kept in the repository; Chalice packages
it with chalicelib. Swagger UI's scripts and stylesheets come from the installed
``swagger-ui-bundle-v2`` package.
"""

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from swagger_ui_bundle import swagger_ui_path

SPEC_PATH = Path(__file__).with_name("openapi.json")
# Operations marked with this extension exist only where PIX_TEST_ENDPOINTS is on.
TEST_ENDPOINT_EXTENSION = "x-pix-test-endpoint"

ASSET_TYPES = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "index.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "application/javascript; charset=utf-8",
    "swagger-ui-standalone-preset.js": "application/javascript; charset=utf-8",
}

# The page loads its assets relative to its own path, so it works at /api/docs and /api/docs/
# and behind an API Gateway stage prefix alike.
SWAGGER_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>pix-stream API</title>
</head>
<body>
  <div id="swagger-ui"></div>
  <script>
    const base = location.pathname.replace(/\\/*$/, "/");
    for (const sheet of ["swagger-ui.css", "index.css"]) {
      const link = document.createElement("link");
      link.rel = "stylesheet";
      link.href = base + sheet;
      document.head.appendChild(link);
    }
    const script = document.createElement("script");
    script.src = base + "swagger-ui-bundle.js";
    script.onload = () => {
      window.ui = SwaggerUIBundle({
        url: new URL(base + "../openapi.json", location.href).href,
        dom_id: "#swagger-ui",
        deepLinking: true,
      });
    };
    document.body.appendChild(script);
  </script>
</body>
</html>
"""


@cache
def _stored_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    return document


def openapi_document(*, test_endpoints: bool, auth: bool) -> dict[str, Any]:
    """Return the stored description, reduced to the routes and security this deployment has."""
    document = copy.deepcopy(_stored_document())
    paths: dict[str, dict[str, Any]] = document["paths"]
    for path, item in list(paths.items()):
        for method, operation in list(item.items()):
            if operation.get(TEST_ENDPOINT_EXTENSION) and not test_endpoints:
                del item[method]
            elif not auth:
                operation.pop("security", None)
        if not item:
            del paths[path]
    return document


@cache
def swagger_asset(name: str) -> tuple[str, str] | None:
    """Return the text and Content-Type of a Swagger UI asset, or None for an unknown name."""
    content_type = ASSET_TYPES.get(name)
    if content_type is None:
        return None
    return (swagger_ui_path / name).read_text(encoding="utf-8"), content_type

"""The served OpenAPI description matches the routes, and Swagger UI is served."""

import re
from typing import Any

import httpx
import pytest

from app import app
from chalicelib import docs

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
# A value for each path parameter, to request every documented path.
PARAMETER_VALUES = {
    "ispb": "12345678",
    "interationId": "0" * 32 + "-1",
    "number": "1",
    "asset": "swagger-ui.css",
}


def documented_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (path, method.upper())
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def routed_operations(test_endpoints: bool) -> set[tuple[str, str]]:
    """Return the routes of app.py, without the test-message routes unless `test_endpoints`."""
    documented_test_paths = {
        path
        for path, item in docs.openapi_document(test_endpoints=True, auth=False)["paths"].items()
        if any(op.get(docs.TEST_ENDPOINT_EXTENSION) for op in item.values())
    }
    return {
        (path, method)
        for path, entries in app.routes.items()
        for method in entries
        if test_endpoints or path not in documented_test_paths
    }


def concrete_path(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda match: PARAMETER_VALUES[match.group(1)], path)


def test_every_route_documented_and_every_path_routed() -> None:
    document = docs.openapi_document(test_endpoints=True, auth=False)

    assert documented_operations(document) == routed_operations(test_endpoints=True)


def test_served_spec_is_openapi_31(http: httpx.Client) -> None:
    response = http.get("/api/openapi.json")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["openapi"] == "3.1.0"


def test_dev_spec_matches_dev_routes(http: httpx.Client) -> None:
    document = http.get("/api/openapi.json").json()

    assert documented_operations(document) == routed_operations(test_endpoints=True)
    assert "security" not in document["paths"]["/api/pix/{ispb}/stream/start"]["get"]


def test_prod_spec_omits_test_endpoints(prod_http: httpx.Client) -> None:
    document = prod_http.get("/api/openapi.json").json()

    assert documented_operations(document) == routed_operations(test_endpoints=False)
    assert "/api/util/msgs/{ispb}/{number}" not in document["paths"]
    start = document["paths"]["/api/pix/{ispb}/stream/start"]["get"]
    assert start["security"] == [{"bearerAuth": []}]


def test_every_documented_path_is_routed(http: httpx.Client) -> None:
    document = http.get("/api/openapi.json").json()

    for path, method in sorted(documented_operations(document)):
        response = http.request(method, concrete_path(path))
        # An unrouted path gets the gateway's route-not-found problem, never a view's reply.
        assert "route-not-found" not in response.text, (method, path)
        assert response.status_code < 500, (method, path, response.text)


def test_unknown_route_is_404_problem(http: httpx.Client) -> None:
    response = http.get("/api/pix/12345678/nothing-here")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:pix-stream:problem:route-not-found"


@pytest.mark.parametrize("path", ["/api/docs/", "/api/docs"])
def test_swagger_ui_page_served(http: httpx.Client, path: str) -> None:
    response = http.get(path)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "SwaggerUIBundle" in response.text
    assert "../openapi.json" in response.text


@pytest.mark.parametrize(
    ("asset", "content_type"),
    [
        ("swagger-ui.css", "text/css"),
        ("index.css", "text/css"),
        ("swagger-ui-bundle.js", "application/javascript"),
        ("swagger-ui-standalone-preset.js", "application/javascript"),
    ],
)
def test_swagger_ui_assets_served(http: httpx.Client, asset: str, content_type: str) -> None:
    response = http.get(f"/api/docs/{asset}")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith(content_type)
    assert len(response.content) > 100


@pytest.mark.parametrize("asset", ["..%2Fopenapi.json", "swagger-ui.js.map", "%2e%2e", "x" * 500])
def test_unknown_swagger_asset_is_404(http: httpx.Client, asset: str) -> None:
    response = http.get(f"/api/docs/{asset}")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"

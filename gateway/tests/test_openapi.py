"""One OpenAPI document, merged at run time from the services' own."""

import json
from collections.abc import Callable
from typing import Any

import httpx

from .conftest import StartGateway, Upstream, assert_problem


def refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            found.add(node["$ref"])
        for value in node.values():
            found |= refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= refs(value)
    return found


def resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_merged_document_has_every_service_and_the_gateway(gw: httpx.Client) -> None:
    response = gw.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "Momentum API"
    paths = document["paths"]
    for path in ("/auth/login", "/users/me", "/goals", "/analytics/streak", "/health/db"):
        assert path in paths, path
    # /health is the gateway's own (services' /health are not merged in).
    responses = paths["/health"]["get"]["responses"]
    schema = resolve(document, responses["503"]["content"]["application/json"]["schema"]["$ref"])
    assert set(schema["properties"]) == {"status", "services"}


def test_internal_and_service_routes_are_left_out(gw: httpx.Client) -> None:
    document = gw.get("/openapi.json").json()
    for path in document["paths"]:
        assert not path.startswith(("/internal", "/.well-known")), path
    assert "InternalOnly" not in document["components"]["schemas"]
    assert "secret_field" not in json.dumps(document)


def test_every_reference_resolves(gw: httpx.Client) -> None:
    document = gw.get("/openapi.json").json()
    all_refs = refs(document)
    assert all_refs
    for ref in all_refs:
        assert resolve(document, ref) is not None, ref


def test_same_named_schemas_of_two_services_are_both_kept(gw: httpx.Client) -> None:
    document = gw.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    tracking_item = resolve(document, schemas["ItemList"]["properties"]["items"]["items"]["$ref"])
    analytics_ref = document["paths"]["/analytics/items/{item_id}"]["get"]["responses"]["200"][
        "content"
    ]["application/json"]["schema"]["$ref"]
    analytics_item = resolve(document, analytics_ref)
    assert set(tracking_item["properties"]) == {"id", "title"}
    assert set(analytics_item["properties"]) == {"day", "total"}
    # Analytics also has an `AnalyticsItem` of its own: renaming must not land on it.
    streak = resolve(
        document,
        document["paths"]["/analytics/streak"]["get"]["responses"]["200"]["content"][
            "application/json"
        ]["schema"]["$ref"],
    )
    recent = resolve(document, streak["properties"]["recent"]["items"]["$ref"])
    assert set(recent["properties"]) == {"day", "minutes"}


def test_security_matches_what_the_gateway_enforces(gw: httpx.Client) -> None:
    document = gw.get("/openapi.json").json()
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer"}
    paths = document["paths"]
    assert paths["/goals"]["get"]["security"] == [{"bearerAuth": []}]
    assert "401" in paths["/goals"]["get"]["responses"]
    assert paths["/users/me"]["get"]["security"] == [{"bearerAuth": []}]
    assert "security" not in paths["/auth/login"]["post"]
    assert "security" not in paths["/health"]["get"]


def test_swagger_ui_is_served(gw: httpx.Client) -> None:
    response = gw.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "swagger-ui" in response.text
    assert "/openapi.json" in response.text


def test_document_is_503_until_every_service_answered_once(start_gateway: StartGateway) -> None:
    tracking = Upstream("tracking")  # its port is chosen; it is not listening yet
    client = start_gateway(tracking_url=tracking.url)
    response = client.get("/openapi.json")
    assert_problem(response, 503)
    assert int(response.headers["Retry-After"]) > 0
    tracking.server.start()
    try:
        response = client.get("/openapi.json")
        assert response.status_code == 200
        assert {"/auth/login", "/goals", "/analytics/streak"} <= response.json()["paths"].keys()
    finally:
        tracking.server.stop()


def test_errors_are_the_shared_problem_components(gw: httpx.Client) -> None:
    document = gw.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    assert {"Problem", "ValidationProblem", "FieldError"} <= schemas.keys()
    # FastAPI's default 422 (application/json) is never passed on.
    assert "HTTPValidationError" not in json.dumps(document)
    goals = document["paths"]["/goals"]["get"]["responses"]
    for status in ("401", "502", "503", "504"):
        assert goals[status]["content"] == {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        }
    assert set(goals["401"]["headers"]) == {"X-Request-ID", "WWW-Authenticate"}
    assert set(goals["503"]["headers"]) == {"X-Request-ID", "Retry-After"}
    assert set(goals["200"]["headers"]) == {"X-Request-ID"}
    assert resolve(document, goals["503"]["headers"]["Retry-After"]["$ref"])["schema"] == {
        "type": "integer"
    }


def test_last_good_document_is_kept_when_a_service_goes_down(
    start_gateway: StartGateway, spare_upstream: Callable[[str], Upstream]
) -> None:
    tracking = spare_upstream("tracking")
    client = start_gateway(tracking_url=tracking.url, openapi_cache_seconds=0)
    assert "/goals" in client.get("/openapi.json").json()["paths"]
    tracking.server.stop()
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert "/goals" in response.json()["paths"]


def test_document_is_cached(
    start_gateway: StartGateway, spare_upstream: Callable[[str], Upstream]
) -> None:
    tracking = spare_upstream("tracking")
    client = start_gateway(tracking_url=tracking.url, openapi_cache_seconds=300)
    first = client.get("/openapi.json").content
    second = client.get("/openapi.json").content
    assert first == second
    assert tracking.hits["echo"] == 0  # /openapi.json is FastAPI's own route, not the echo

"""The OpenAPI document the gateway serves, read as a code generator reads it, and checked
against what the running stack really answers."""

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from momentum_gateway.openapi import HTTP_METHODS, render
from momentum_libs.devstack import Stack

from .conftest import PASSWORD, Account, new_account

COMMITTED = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"
PROBLEM = "#/components/schemas/Problem"
VALIDATION_PROBLEM = "#/components/schemas/ValidationProblem"
# The health reports' 503 is the report itself (which part is down), not a problem.
HEALTH_PATHS = {"/health", "/health/db"}

Json = dict[str, Any]


@pytest.fixture(scope="module")
def document(stack: Stack) -> Json:
    response = httpx.get(f"{stack.gateway_url}/openapi.json", timeout=15)
    assert response.status_code == 200, response.text
    return dict(response.json())


def resolve(document: Json, node: Json) -> Json:
    while "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def operations(document: Json) -> Iterator[tuple[str, str, Json]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield method, path, operation


def test_committed_document_is_what_the_gateway_serves(document: Json) -> None:
    assert COMMITTED.read_text(encoding="utf-8") == render(document), (
        "docs/openapi.json is stale: run `make openapi`"
    )


def test_operation_ids_are_unique_camel_case_names(document: Json) -> None:
    ids = {(method, path): op.get("operationId") for method, path, op in operations(document)}
    for key, operation_id in ids.items():
        assert operation_id and re.fullmatch(r"[a-z]+(?:[A-Z][a-z]+)*", operation_id), key
    assert len(set(ids.values())) == len(ids)
    assert {
        ("post", "/auth/register"): "register",
        ("post", "/auth/login"): "login",
        ("post", "/daily-logs"): "createDailyLog",
        ("get", "/daily-logs"): "listDailyLogs",
        ("patch", "/goals/{goal_id}"): "updateGoal",
        ("get", "/analytics/dashboard"): "getDashboard",
    }.items() <= ids.items()


def test_every_error_response_references_the_problem_components(document: Json) -> None:
    schemas = document["components"]["schemas"]
    assert {"Problem", "ValidationProblem"} <= schemas.keys()
    assert not {"HTTPValidationError", "ValidationError"} & schemas.keys()
    checked = 0
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if int(status) < 400 or path in HEALTH_PATHS:
                continue
            expected = VALIDATION_PROBLEM if status == "422" else PROBLEM
            assert response["content"] == {
                "application/problem+json": {"schema": {"$ref": expected}}
            }, (method, path, status)
            checked += 1
    assert checked > 100


def test_each_status_declares_the_headers_it_carries(document: Json) -> None:
    headers = document["components"]["headers"]
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            declared = response["headers"]
            for name, ref in declared.items():
                assert resolve(document, ref) is headers[name]
            assert "X-Request-ID" in declared, (method, path, status)
            if status == "401":
                assert "WWW-Authenticate" in declared, (method, path)
            if status in ("429", "503") and path not in HEALTH_PATHS:
                assert "Retry-After" in declared, (method, path, status)
    assert any("429" in op["responses"] for _, _, op in operations(document))


def problem_validator(document: Json, ref: str) -> jsonschema.Draft202012Validator:
    # The components, as one schema whose $refs resolve inside it.
    return jsonschema.Draft202012Validator({"$ref": ref, "components": document["components"]})


def test_answered_problems_match_the_declared_components(
    gateway: httpx.Client, account: Account, document: Json
) -> None:
    missing = gateway.get(f"/goals/{uuid.uuid4().hex[:24]}", headers=account.headers)
    invalid = gateway.post("/goals", json={}, headers=account.headers)
    unauthorized = gateway.get("/goals")
    assert (missing.status_code, invalid.status_code, unauthorized.status_code) == (404, 422, 401)
    problem_validator(document, PROBLEM).validate(missing.json())
    problem_validator(document, VALIDATION_PROBLEM).validate(invalid.json())
    problem_validator(document, PROBLEM).validate(unauthorized.json())
    assert unauthorized.headers["WWW-Authenticate"].startswith("Bearer")
    for response in (missing, invalid, unauthorized):
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["X-Request-ID"]


def has_example(document: Json, schema: Json) -> bool:
    schema = resolve(document, schema)
    if "examples" in schema:
        return True
    # A page's example is its items'.
    items = schema.get("properties", {}).get("items", {}).get("items")
    return items is not None and "examples" in resolve(document, items)


def test_request_bodies_and_main_responses_have_examples(document: Json) -> None:
    for method, path, operation in operations(document):
        for media in operation.get("requestBody", {}).get("content", {}).values():
            assert has_example(document, media["schema"]), (method, path)
        for status, response in operation["responses"].items():
            if status in ("200", "201"):
                schema = response["content"]["application/json"]["schema"]
                assert has_example(document, schema), (method, path, status)


def test_tags_are_described_and_a_server_is_declared(document: Json) -> None:
    used = {tag for _, _, op in operations(document) for tag in op["tags"]}
    described = {tag["name"] for tag in document["tags"] if tag.get("description")}
    assert used <= described
    assert document["servers"] == [
        {"url": "/", "description": document["servers"][0]["description"]}
    ]


def nullable(schema: Json) -> bool:
    return any(branch.get("type") == "null" for branch in schema.get("anyOf", []))


@pytest.mark.parametrize(
    ("schema_name", "collection"),
    [("GoalUpdate", "/goals"), ("TargetUpdate", "/weekly-targets"), ("LogUpdate", "/daily-logs")],
)
def test_null_is_accepted_exactly_where_the_schema_says(
    gateway: httpx.Client, document: Json, schema_name: str, collection: str
) -> None:
    account = new_account(gateway)
    goal = gateway.post("/goals", json={"title": "Read"}, headers=account.headers).json()
    bodies = {
        "/goals": {"title": "Swim"},
        "/weekly-targets": {
            "goal_id": goal["id"],
            "week_start": "2026-03-02",
            "target_minutes": 60,
        },
        "/daily-logs": {"goal_id": goal["id"], "date": "2026-03-02", "minutes": 30},
    }
    created = gateway.post(collection, json=bodies[collection], headers=account.headers)
    assert created.status_code == 201, created.text
    url = f"{collection}/{created.json()['id']}"
    properties = document["components"]["schemas"][schema_name]["properties"]
    assert properties
    for name, schema in properties.items():
        answer = gateway.patch(url, json={name: None}, headers=account.headers)
        assert answer.status_code == (200 if nullable(schema) else 422), (name, answer.text)
        assert "default" not in schema or nullable(schema), name
    assert not nullable(document["components"]["schemas"]["GoalUpdate"]["properties"]["title"])


def test_both_declared_login_bodies_sign_in(gateway: httpx.Client, account: Account) -> None:
    contents = {
        "application/json": {"email": account.email, "password": PASSWORD},
        "application/x-www-form-urlencoded": {"username": account.email, "password": PASSWORD},
    }
    document = gateway.get("/openapi.json").json()
    declared = document["paths"]["/auth/login"]["post"]["requestBody"]["content"]
    assert set(declared) == set(contents)
    assert declared["application/json"]["schema"] == {"$ref": "#/components/schemas/LoginRequest"}
    for media_type, fields in contents.items():
        assert set(resolve(document, declared[media_type]["schema"])["required"]) == set(fields)
        sent = {"json": fields} if media_type == "application/json" else {"data": fields}
        response = gateway.post("/auth/login", **sent)  # type: ignore[arg-type]
        assert response.status_code == 200, (media_type, response.text)

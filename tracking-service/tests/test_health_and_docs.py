"""GET /health/db does real round trips; OpenAPI documents every error a route answers."""

from tracking_support import Api


async def test_health_db_ok(api: Api) -> None:
    r = await api.client.get("/health/db")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "mongodb": "ok", "redis": "ok"}
    assert (await api.client.get("/health")).json() == {"status": "ok"}


async def test_every_request_has_a_request_id(api: Api) -> None:
    r = await api.client.get("/goals", headers={**api.user(), "X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = await api.client.get("/goals/nope", headers=api.user())
    assert r.status_code == 404
    assert r.headers["x-request-id"]
    assert set(r.json()) == {"type", "title", "status", "detail"}


async def test_openapi_documents_the_errors(api: Api) -> None:
    spec = (await api.client.get("/openapi.json")).json()
    paths = spec["paths"]
    expected = {
        ("/goals", "post"): {"201", "401", "422"},
        ("/goals", "get"): {"200", "401", "422"},
        ("/goals/{goal_id}", "get"): {"200", "401", "404"},
        ("/goals/{goal_id}", "patch"): {"200", "401", "404", "422"},
        ("/goals/{goal_id}", "delete"): {"204", "401", "404"},
        ("/goals/{goal_id}/activate", "patch"): {"200", "401", "404"},
        ("/weekly-targets", "post"): {"201", "401", "404", "409", "422"},
        ("/weekly-targets", "get"): {"200", "401", "422"},
        ("/weekly-targets/{target_id}", "patch"): {"200", "401", "404", "422"},
        ("/weekly-targets/{target_id}", "delete"): {"204", "401", "404"},
        ("/daily-logs", "post"): {"201", "401", "404", "409", "422"},
        ("/daily-logs", "get"): {"200", "401", "422"},
        ("/daily-logs/{log_id}", "get"): {"200", "401", "404"},
        ("/daily-logs/{log_id}", "patch"): {"200", "401", "404", "422"},
        ("/daily-logs/{log_id}", "delete"): {"204", "401", "404"},
        ("/health/db", "get"): {"200", "503"},
    }
    for (path, method), statuses in expected.items():
        documented = set(paths[path][method]["responses"])
        assert statuses <= documented, (path, method, documented)
    problem = paths["/daily-logs"]["post"]["responses"]["409"]["content"]
    assert "application/problem+json" in problem
    params = {p["name"] for p in paths["/daily-logs"]["post"]["parameters"]}
    assert "Idempotency-Key" in params
    list_params = {p["name"] for p in paths["/daily-logs"]["get"]["parameters"]}
    assert {"from", "to", "goal_id", "limit", "cursor"} <= list_params

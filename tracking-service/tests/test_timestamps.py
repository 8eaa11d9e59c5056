"""Every timestamp tracking answers is RFC 3339 UTC in one format: ``YYYY-MM-DDTHH:MM:SSZ``.

The embedded MongoDB server gives back a datetime written by ``$set`` without its zone, so
a document read again (a PATCH that changes nothing, a repeated activation, a GET after a
change) is where a naive timestamp would show.
"""

import re
from typing import Any

from tracking_support import Api

RFC3339_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def assert_timestamps(body: dict[str, Any]) -> None:
    for field in ("created_at", "updated_at"):
        assert RFC3339_UTC.fullmatch(body[field]), (field, body)


async def test_goal_timestamps_after_every_kind_of_write(api: Api) -> None:
    h = api.user()
    first = await api.goal(h, "first")
    second = await api.goal(h, "second")
    answers = [first, second]
    r = await api.client.patch(f"/goals/{second['id']}", json={"title": "changed"}, headers=h)
    answers.append(r.json())
    r = await api.client.patch(f"/goals/{second['id']}", json={}, headers=h)
    answers.append(r.json())
    for _ in range(2):
        r = await api.client.patch(f"/goals/{second['id']}/activate", headers=h)
        answers.append(r.json())
    for goal in (first, second):
        r = await api.client.get(f"/goals/{goal['id']}", headers=h)
        answers.append(r.json())
    r = await api.client.get("/goals", headers=h)
    answers += r.json()["items"]
    assert len(answers) == 10
    for body in answers:
        assert_timestamps(body)


async def test_target_and_log_timestamps_after_reads_and_writes(api: Api) -> None:
    h = api.user()
    goal = await api.goal(h)
    target = await api.target(h, goal["id"])
    log = await api.log(h, goal["id"])
    answers = [target, log]
    for path, item in (
        (f"/weekly-targets/{target['id']}", target),
        (f"/daily-logs/{log['id']}", log),
    ):
        r = await api.client.patch(path, json={"note": "n"}, headers=h)
        answers.append(r.json())
        r = await api.client.patch(path, json={"note": "n"}, headers=h)
        answers.append(r.json())
        r = await api.client.get(path, headers=h)
        answers.append(r.json())
        assert item["id"] == r.json()["id"]
    for path in ("/weekly-targets", "/daily-logs"):
        r = await api.client.get(path, headers=h)
        answers += r.json()["items"]
    assert len(answers) == 10
    for body in answers:
        assert_timestamps(body)


async def test_idempotent_replay_has_the_same_timestamps(api: Api) -> None:
    h = {**api.user(), "Idempotency-Key": "k-1"}
    goal = await api.goal(h)
    body = {"goal_id": goal["id"], "date": "2026-11-20", "minutes": 5}
    first = await api.client.post("/daily-logs", json=body, headers=h)
    again = await api.client.post("/daily-logs", json=body, headers=h)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert_timestamps(again.json())

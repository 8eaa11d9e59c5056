"""Weekly targets: Monday weeks, minute bounds, one per goal and week, filters, ownership."""

from typing import Any

import pytest
from tracking_support import Api

MONDAY = "2026-11-16"


@pytest.mark.parametrize(
    "change",
    [
        {"week_start": "2026-11-17"},  # a Tuesday
        {"week_start": "2026-11-22"},  # a Sunday
        {"week_start": "16/11/2026"},
        {"target_minutes": 0},
        {"target_minutes": 10081},
        {"target_minutes": "300"},
        {"target_minutes": 30.5},
        {"note": "n" * 2001},
        {"extra": True},
    ],
)
async def test_create_rejects_invalid_bodies(api: Api, change: dict[str, Any]) -> None:
    h = api.user()
    goal = await api.goal(h)
    body = {"goal_id": goal["id"], "week_start": MONDAY, "target_minutes": 300, **change}
    r = await api.client.post("/weekly-targets", json=body, headers=h)
    assert r.status_code == 422, r.text
    assert r.json()["errors"]


@pytest.mark.parametrize("minutes", [1, 10080])
async def test_minute_bounds_are_inclusive(api: Api, minutes: int) -> None:
    h = api.user()
    goal = await api.goal(h)
    target = await api.target(h, goal["id"], MONDAY, minutes)
    assert target["target_minutes"] == minutes
    assert target["week_start"] == MONDAY
    assert target["goal_id"] == goal["id"]
    assert target["note"] is None


async def test_one_target_per_goal_and_week(api: Api) -> None:
    h = api.user()
    goal = await api.goal(h)
    other_goal = await api.goal(h, "other")
    first = await api.target(h, goal["id"], MONDAY)
    r = await api.client.post(
        "/weekly-targets",
        json={"goal_id": goal["id"], "week_start": MONDAY, "target_minutes": 10},
        headers=h,
    )
    assert r.status_code == 409
    assert r.headers["content-type"].startswith("application/problem+json")
    await api.target(h, other_goal["id"], MONDAY)  # another goal, same week: fine
    await api.target(h, goal["id"], "2026-11-23")  # same goal, another week: fine
    # A deleted target does not block a new one for its week.
    assert (await api.client.delete(f"/weekly-targets/{first['id']}", headers=h)).status_code == 204
    again = await api.target(h, goal["id"], MONDAY, 42)
    assert again["id"] != first["id"]
    assert again["target_minutes"] == 42


async def test_goal_of_another_user_or_missing_is_404(api: Api) -> None:
    owner, stranger = api.user(), api.user()
    goal = await api.goal(owner)
    for goal_id in (goal["id"], "0123456789abcdef01234567", "nope"):
        r = await api.client.post(
            "/weekly-targets",
            json={"goal_id": goal_id, "week_start": MONDAY, "target_minutes": 5},
            headers=stranger,
        )
        assert r.status_code == 404, r.text
    target = await api.target(owner, goal["id"])
    for method, body in (("GET", None), ("PATCH", {"target_minutes": 1}), ("DELETE", None)):
        r = await api.client.request(
            method, f"/weekly-targets/{target['id']}", json=body, headers=stranger
        )
        assert r.status_code == 404, (method, r.text)
    r = await api.client.get(f"/weekly-targets/{target['id']}", headers=owner)
    assert r.json()["target_minutes"] == 300


async def test_patch_only_given_fields_and_null_clears_note(api: Api) -> None:
    h = api.user()
    goal = await api.goal(h)
    r = await api.client.post(
        "/weekly-targets",
        json={"goal_id": goal["id"], "week_start": MONDAY, "target_minutes": 300, "note": "n"},
        headers=h,
    )
    target = r.json()
    url = f"/weekly-targets/{target['id']}"
    r = await api.client.patch(url, json={"target_minutes": 120}, headers=h)
    assert (r.json()["target_minutes"], r.json()["note"]) == (120, "n")
    r = await api.client.patch(url, json={"note": None}, headers=h)
    assert (r.json()["target_minutes"], r.json()["note"]) == (120, None)
    for bad in ({"target_minutes": None}, {"target_minutes": 0}, {"week_start": MONDAY}):
        r = await api.client.patch(url, json=bad, headers=h)
        assert r.status_code == 422, (bad, r.text)
    assert (await api.client.get(url, headers=h)).json()["target_minutes"] == 120


async def test_list_latest_week_first_with_filters_and_pages(api: Api) -> None:
    h = api.user()
    a = await api.goal(h, "a")
    b = await api.goal(h, "b")
    weeks = ["2026-10-26", "2026-11-02", "2026-11-09", "2026-11-16"]
    for week in weeks:
        await api.target(h, a["id"], week)
        await api.target(h, b["id"], week)
    items = await api.walk("/weekly-targets", h, limit=3)
    assert len(items) == 8
    assert len({t["id"] for t in items}) == 8
    assert [t["week_start"] for t in items] == sorted(
        (w for w in weeks for _ in "ab"), reverse=True
    )
    only_a = await api.walk("/weekly-targets", h, limit=2, goal_id=a["id"])
    assert {t["goal_id"] for t in only_a} == {a["id"]}
    assert len(only_a) == 4
    ranged = await api.walk("/weekly-targets", h, limit=50, **{"from": weeks[1], "to": weeks[2]})
    assert sorted({t["week_start"] for t in ranged}) == weeks[1:3]
    assert len(ranged) == 4
    r = await api.client.get(
        "/weekly-targets", params={"from": weeks[2], "to": weeks[1]}, headers=h
    )
    assert r.status_code == 422
    r = await api.client.get("/weekly-targets", params={"goal_id": "garbage"}, headers=h)
    assert r.json()["items"] == []
    r = await api.client.get("/weekly-targets", headers=api.user())
    assert r.json()["items"] == []

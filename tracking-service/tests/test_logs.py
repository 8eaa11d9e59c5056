"""Daily logs: bounds, date rules, filters, pagination while writing, moves, ownership."""

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from momentum_libs.problems import ProblemError
from momentum_tracking.logs.schemas import LogCreate
from tracking_support import Api


def today() -> date:
    return datetime.now(UTC).date()


@pytest.mark.parametrize(
    "change",
    [
        {"minutes": 0},
        {"minutes": 1441},
        {"minutes": -5},
        {"minutes": "30"},
        {"minutes": True},
        {"date": "1999-12-31"},
        {"date": (date.today() + timedelta(days=3)).isoformat()},
        {"date": "2026-02-30"},
        {"date": "2026-11-20T10:00:00Z"},
        {"note": "n" * 2001},
        {"user_id": "someone-else"},
        {"goal_id": None},
    ],
)
async def test_create_rejects_invalid_bodies(api: Api, change: dict[str, Any]) -> None:
    h = api.user()
    goal = await api.goal(h)
    body = {"goal_id": goal["id"], "date": "2026-11-20", "minutes": 30, **change}
    r = await api.client.post("/daily-logs", json=body, headers=h)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    r = await api.client.get("/daily-logs", headers=h)
    assert r.json()["items"] == []


async def test_date_and_minute_bounds_that_are_allowed(api: Api) -> None:
    h = api.user()
    goal = await api.goal(h)
    tomorrow = (today() + timedelta(days=1)).isoformat()
    for day, minutes in (("2000-01-01", 1), (tomorrow, 1440), (today().isoformat(), 15)):
        log = await api.log(h, goal["id"], day, minutes)
        assert (log["date"], log["minutes"], log["goal_id"]) == (day, minutes, goal["id"])
    r = await api.client.post(
        "/daily-logs",
        json={"goal_id": goal["id"], "date": "2026-11-20", "minutes": 5, "note": "n" * 2000},
        headers=h,
    )
    assert r.status_code == 201
    assert set(r.json()) == {"id", "goal_id", "date", "minutes", "note", "created_at", "updated_at"}


async def test_goal_of_another_user_or_missing_is_404(api: Api) -> None:
    owner, stranger = api.user(), api.user()
    goal = await api.goal(owner)
    for goal_id in (goal["id"], "0123456789abcdef01234567", "x"):
        r = await api.client.post(
            "/daily-logs", json={"goal_id": goal_id, "date": "2026-11-20", "minutes": 5},
            headers=stranger,
        )  # fmt: skip
        assert r.status_code == 404, r.text
    log = await api.log(owner, goal["id"])
    for path in (f"/daily-logs/{log['id']}", "/daily-logs/zzz", "/daily-logs/" + "f" * 24):
        for method, body in (("GET", None), ("PATCH", {"minutes": 1}), ("DELETE", None)):
            r = await api.client.request(method, path, json=body, headers=stranger)
            assert r.status_code == 404, (method, path, r.text)
    assert (await api.client.get(f"/daily-logs/{log['id']}", headers=owner)).json() == log


async def test_patch_moves_a_log_and_null_clears_note(api: Api) -> None:
    h, stranger = api.user(), api.user()
    a = await api.goal(h, "a")
    b = await api.goal(h, "b")
    theirs = await api.goal(stranger, "theirs")
    r = await api.client.post(
        "/daily-logs",
        json={"goal_id": a["id"], "date": "2026-11-20", "minutes": 30, "note": "n"},
        headers=h,
    )
    url = f"/daily-logs/{r.json()['id']}"
    r = await api.client.patch(url, json={"goal_id": b["id"], "date": "2026-11-18"}, headers=h)
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["goal_id"], got["date"], got["minutes"], got["note"]) == (
        b["id"], "2026-11-18", 30, "n",
    )  # fmt: skip
    r = await api.client.patch(url, json={"note": None, "minutes": 45}, headers=h)
    assert (r.json()["note"], r.json()["minutes"], r.json()["goal_id"]) == (None, 45, b["id"])
    for bad in ({"goal_id": theirs["id"]}, {"goal_id": "0123456789abcdef01234567"}):
        assert (await api.client.patch(url, json=bad, headers=h)).status_code == 404
    invalid: list[dict[str, Any]] = [
        {"minutes": None}, {"date": None}, {"minutes": 2000}, {"date": "1990-01-01"}, {"x": 1},
    ]  # fmt: skip
    for bad in invalid:
        assert (await api.client.patch(url, json=bad, headers=h)).status_code == 422, bad
    final = (await api.client.get(url, headers=h)).json()
    assert (final["goal_id"], final["date"], final["minutes"]) == (b["id"], "2026-11-18", 45)


async def test_list_filters_are_inclusive_and_sorted(api: Api) -> None:
    h = api.user()
    a = await api.goal(h, "a")
    b = await api.goal(h, "b")
    days = ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"]
    for day in days:
        await api.log(h, a["id"], day)
        await api.log(h, b["id"], day)
    r = await api.client.get("/daily-logs", params={"from": days[1], "to": days[2]}, headers=h)
    assert [x["date"] for x in r.json()["items"]] == [days[2], days[2], days[1], days[1]]
    r = await api.client.get("/daily-logs", params={"from": days[3], "goal_id": a["id"]}, headers=h)
    assert [(x["date"], x["goal_id"]) for x in r.json()["items"]] == [(days[3], a["id"])]
    r = await api.client.get("/daily-logs", params={"to": days[0]}, headers=h)
    assert len(r.json()["items"]) == 2
    r = await api.client.get("/daily-logs", params={"from": days[2], "to": days[1]}, headers=h)
    assert r.status_code == 422
    r = await api.client.get("/daily-logs", params={"from": "yesterday"}, headers=h)
    assert r.status_code == 422
    r = await api.client.get("/daily-logs", params={"limit": 201}, headers=h)
    assert r.status_code == 422
    r = await api.client.get("/daily-logs", params={"cursor": "!!"}, headers=h)
    assert r.status_code == 422


async def test_walking_pages_returns_every_log_once_while_logs_are_added(api: Api) -> None:
    h = api.user()
    goal = await api.goal(h)
    rng = random.Random(7)
    days = [f"2026-10-{d:02d}" for d in range(1, 21)]
    originals = {(await api.log(h, goal["id"], rng.choice(days)))["id"] for _ in range(45)}
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        r = await api.client.get("/daily-logs", params=params, headers=h)
        page = r.json()
        seen += page["items"]
        # Writes between pages, on dates before, inside and after the page.
        for _ in range(2):
            await api.log(h, goal["id"], rng.choice([*days, "2026-09-30", "2026-10-25"]))
        cursor = page["next_cursor"]
        if cursor is None:
            break
    ids = [x["id"] for x in seen]
    assert len(ids) == len(set(ids)), "an item came twice"
    assert originals <= set(ids), "an item was skipped"
    keys = [(x["date"], x["id"]) for x in seen]
    assert keys == sorted(keys, reverse=True)


async def test_delete_log(api: Api) -> None:
    h = api.user()
    goal = await api.goal(h)
    log = await api.log(h, goal["id"])
    keep = await api.log(h, goal["id"])
    assert (await api.client.delete(f"/daily-logs/{log['id']}", headers=h)).status_code == 204
    assert (await api.client.get(f"/daily-logs/{log['id']}", headers=h)).status_code == 404
    assert (await api.client.delete(f"/daily-logs/{log['id']}", headers=h)).status_code == 404
    r = await api.client.get("/daily-logs", headers=h)
    assert [x["id"] for x in r.json()["items"]] == [keep["id"]]


async def test_many_logs_at_once_keep_the_rules_of_one(api: Api) -> None:
    """``LogService.create_many`` (an import's writes): each item's own outcome, in order;
    logs on a goal deleted before the owned-goal check are taken back, not orphaned."""
    user_id = uuid.uuid4().hex
    owner = api.user(user_id)
    kept, doomed = await api.goal(owner, "Kept"), await api.goal(owner, "Doomed")
    logs = api.app.state.service.logs
    day = today() - timedelta(days=2)
    items = [
        LogCreate(goal_id=kept["id"], date=day, minutes=10),
        LogCreate(goal_id=doomed["id"], date=day, minutes=20),
        LogCreate(goal_id=kept["id"], date=today() + timedelta(days=3), minutes=30),
        LogCreate(goal_id="0123456789abcdef01234567", date=day, minutes=40),
        LogCreate(goal_id=kept["id"], date=day, minutes=50),
    ]
    r = await api.client.delete(f"/goals/{doomed['id']}", headers=owner)
    assert r.status_code == 204, r.text
    results = await logs.create_many(user_id, items)
    assert [getattr(r, "status", None) for r in results] == [None, 404, 422, 404, None]
    assert isinstance(results[2], ProblemError)
    assert "after tomorrow" in results[2].detail
    r = await api.client.get("/daily-logs", headers=owner)
    assert sorted(lg["minutes"] for lg in r.json()["items"]) == [10, 50]

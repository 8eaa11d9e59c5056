"""The four reads, fed through the real stream by a stand-in for tracking-service."""

import math
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from .analytics_support import FakeTracking, streak_of
from .conftest import Service


def today_utc() -> date:
    return datetime.now(UTC).date()


def monday(d: date) -> date:
    return d - timedelta(days=d.weekday())


async def test_a_user_with_nothing_gets_zeros_and_nulls(service: Service) -> None:
    uid = "nobody-" + str(id(service))
    dashboard = (await service.get("/analytics/dashboard", uid)).json()
    today = today_utc()
    assert dashboard == {
        "active_goal": None,
        "week_start": monday(today).isoformat(),
        "week_end": (monday(today) + timedelta(days=6)).isoformat(),
        "weekly_target_minutes": None,
        "weekly_logged_minutes": 0,
        "weekly_progress_percent": None,
        "current_streak": 0,
        "longest_streak": 0,
        "total_minutes": 0,
        "total_hours": 0.0,
        "as_of": None,  # no event of this user was ever applied
        "pending": False,
    }
    streak = await service.get("/analytics/streak", uid)
    assert streak.status_code == 200
    assert streak.json() == {
        "current_streak": 0,
        "longest_streak": 0,
        "last_activity_date": None,
        "goal_id": None,
        "today": {"date": today.isoformat(), "status": "pending"},
        "at_risk": False,
        "expires_at": None,
        "freezes": {"available": 0, "max": 2, "next_in_days": 7},
        "as_of": None,
        "pending": False,
    }
    summary = (await service.get("/analytics/weekly-summary", uid)).json()
    assert summary["goal_id"] is None and summary["target_minutes"] is None
    assert summary["logged_minutes"] == 0 and summary["active_days"] == 0
    assert [d["minutes"] for d in summary["days"]] == [0] * 7
    heatmap = (await service.get("/analytics/heatmap", uid)).json()
    assert heatmap["max_minutes"] == 0 and len(heatmap["days"]) == 365
    assert heatmap["to"] == today.isoformat()


async def test_every_read_needs_a_token(service: Service) -> None:
    for path in ("dashboard", "weekly-summary", "streak", "heatmap"):
        response = await service.client.get(f"/analytics/{path}")
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.headers["www-authenticate"] == "Bearer"


async def test_dashboard_week_target_progress_and_totals(service: Service) -> None:
    t = FakeTracking()
    t.register("UTC")
    other = t.create_goal("Other", active=False)
    goal = t.create_goal("Learn piano")
    today = today_utc()
    week = monday(today)
    t.set_target(goal, week, 300)
    t.set_target(goal, week - timedelta(days=7), 999)  # another week: not this one
    t.create_log(goal, week, 100)
    t.create_log(goal, today, 35)
    t.create_log(other, today, 50)
    t.create_log(goal, week - timedelta(days=1), 20)  # last week: in totals only
    await service.send(t)
    body = (await service.get("/analytics/dashboard", t.user_id)).json()
    logged = 135
    assert body["active_goal"] == {"id": goal, "title": "Learn piano"}
    assert body["week_start"] == week.isoformat()
    assert body["week_end"] == (week + timedelta(days=6)).isoformat()
    assert body["weekly_target_minutes"] == 300
    assert body["weekly_logged_minutes"] == logged
    assert body["weekly_progress_percent"] == round(100 * logged / 300, 1) == 45.0
    assert body["total_minutes"] == 205
    assert body["total_hours"] == round(205 / 60, 2) == 3.42
    current, longest, _ = streak_of(t.day_minutes(), today)
    assert body["current_streak"] == current
    assert body["longest_streak"] == longest

    # Activating the other goal switches the week's figures to it; no target: null progress.
    t.activate_goal(other)
    t.update_log(next(iter(t.logs)), minutes=400)  # progress is not capped once it is back
    await service.send(t)
    body = (await service.get("/analytics/dashboard", t.user_id)).json()
    assert body["active_goal"] == {"id": other, "title": "Other"}
    assert body["weekly_target_minutes"] is None
    assert body["weekly_progress_percent"] is None
    assert body["weekly_logged_minutes"] == 50
    t.activate_goal(goal)
    await service.send(t)
    body = (await service.get("/analytics/dashboard", t.user_id)).json()
    assert body["weekly_logged_minutes"] == 435
    assert body["weekly_progress_percent"] == 145.0


async def test_streak_ending_yesterday_counts_and_deleting_a_day_breaks_it(
    service: Service,
) -> None:
    t = FakeTracking()
    t.register("UTC")
    goal = t.create_goal()
    today = today_utc()
    logs = {n: t.create_log(goal, today - timedelta(days=n), 30) for n in (1, 2, 3, 4)}
    await service.send(t)
    streak = (await service.get("/analytics/streak", t.user_id)).json()
    assert streak.pop("as_of") is not None and streak.pop("pending") is False
    assert streak == {
        "current_streak": 4,
        "longest_streak": 4,
        "last_activity_date": (today - timedelta(days=1)).isoformat(),
        "goal_id": None,
        "today": {"date": today.isoformat(), "status": "pending"},
        "at_risk": True,  # no freeze held: the streak ends with today unless it is logged
        "expires_at": (today + timedelta(days=1)).isoformat() + "T00:00:00Z",
        "freezes": {"available": 0, "max": 2, "next_in_days": 3},
    }
    t.create_log(goal, today, 5)
    await service.send(t)
    streak = (await service.get("/analytics/streak", t.user_id)).json()
    assert streak["current_streak"] == 5 and streak["last_activity_date"] == today.isoformat()

    t.delete_log(logs[2])
    await service.send(t)
    streak = (await service.get("/analytics/streak", t.user_id)).json()
    assert streak["current_streak"] == 2  # today and yesterday
    assert streak["longest_streak"] == 2
    dashboard = (await service.get("/analytics/dashboard", t.user_id)).json()
    assert dashboard["current_streak"] == 2 and dashboard["total_minutes"] == 95


async def test_a_streak_that_lapsed_reads_zero_without_any_event(service: Service) -> None:
    t = FakeTracking()
    goal = t.create_goal()
    today = today_utc()
    for n in (2, 3, 4):
        t.create_log(goal, today - timedelta(days=n), 10)
    await service.send(t)
    streak = (await service.get("/analytics/streak", t.user_id)).json()
    assert streak["current_streak"] == 0 and streak["longest_streak"] == 3


async def test_a_log_moved_to_another_date_and_goal(service: Service) -> None:
    t = FakeTracking()
    goal = t.create_goal("A")
    other = t.create_goal("B", active=False)
    today = today_utc()
    first, second = today - timedelta(days=10), today - timedelta(days=3)
    log_id = t.create_log(goal, first, 45)
    await service.send(t)
    t.update_log(log_id, day=second)
    await service.send(t)
    heat = (
        await service.get(
            "/analytics/heatmap", t.user_id, **{"from": first.isoformat(), "to": today.isoformat()}
        )
    ).json()
    minutes = {d["date"]: d["minutes"] for d in heat["days"]}
    assert minutes[first.isoformat()] == 0 and minutes[second.isoformat()] == 45
    t.update_log(log_id, goal_id=other, minutes=15)
    await service.send(t)
    week = monday(second)
    a = (
        await service.get("/analytics/weekly-summary", t.user_id, week_start=week.isoformat())
    ).json()
    b = (
        await service.get(
            "/analytics/weekly-summary", t.user_id, week_start=week.isoformat(), goal_id=other
        )
    ).json()
    assert a["goal_id"] == goal and a["logged_minutes"] == 0
    assert b["goal_id"] == other and b["logged_minutes"] == 15 and b["active_days"] == 1
    streak = (await service.get("/analytics/streak", t.user_id)).json()
    assert streak["last_activity_date"] == second.isoformat()


async def test_goal_deletion_removes_its_minutes(service: Service) -> None:
    t = FakeTracking()
    keep = t.create_goal("Keep", active=False)
    doomed = t.create_goal("Doomed")
    today = today_utc()
    for n in range(5):
        t.create_log(doomed, today - timedelta(days=n), 20)
    t.create_log(keep, today - timedelta(days=40), 30)
    await service.send(t)
    body = (await service.get("/analytics/dashboard", t.user_id)).json()
    assert body["total_minutes"] == 130 and body["current_streak"] == 5
    # Deliver only goal.deleted first: the minutes leave at once...
    t.delete_goal(doomed)
    events = t.take()
    from analytics_support import publish

    await publish(service.redis, service.settings.events_stream, events[:1])
    await service.wait_drained()
    body = (await service.get("/analytics/dashboard", t.user_id)).json()
    assert body["active_goal"] is None
    assert body["total_minutes"] == 30 and body["current_streak"] == 0
    assert body["longest_streak"] == 1
    # ...and the cascade's log.deleted events do not subtract them twice.
    await publish(service.redis, service.settings.events_stream, events[1:] + events[:1])
    await service.wait_drained()
    body = (await service.get("/analytics/dashboard", t.user_id)).json()
    assert body["total_minutes"] == 30
    response = await service.get("/analytics/weekly-summary", t.user_id, goal_id=doomed)
    assert response.status_code == 404


async def test_heatmap_levels_ranges_and_limits(service: Service) -> None:
    t = FakeTracking()
    goal = t.create_goal()
    start = date(2026, 3, 1)
    t.create_log(goal, start, 10)
    t.create_log(goal, start + timedelta(days=2), 40)
    t.create_log(goal, start + timedelta(days=3), 20)
    t.create_log(goal, start + timedelta(days=3), 1)  # several logs on a day add up
    t.create_log(goal, start + timedelta(days=4), 1)
    await service.send(t)
    end = start + timedelta(days=6)
    response = await service.get(
        "/analytics/heatmap", t.user_id, **{"from": start.isoformat(), "to": end.isoformat()}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["from"] == start.isoformat() and body["to"] == end.isoformat()
    assert body["max_minutes"] == 40
    assert [d["date"] for d in body["days"]] == [
        (start + timedelta(days=n)).isoformat() for n in range(7)
    ]
    assert [d["minutes"] for d in body["days"]] == [10, 0, 40, 21, 1, 0, 0]
    expected = [0 if m == 0 else math.ceil(4 * m / 40) for m in [10, 0, 40, 21, 1, 0, 0]]
    assert [d["level"] for d in body["days"]] == expected == [1, 0, 4, 3, 1, 0, 0]

    ok = await service.get(
        "/analytics/heatmap",
        t.user_id,
        **{"from": start.isoformat(), "to": (start + timedelta(days=1097)).isoformat()},
    )
    assert ok.status_code == 200 and len(ok.json()["days"]) == 1098
    too_long = await service.get(
        "/analytics/heatmap",
        t.user_id,
        **{"from": start.isoformat(), "to": (start + timedelta(days=1098)).isoformat()},
    )
    assert too_long.status_code == 422
    assert too_long.headers["content-type"].startswith("application/problem+json")
    backwards = await service.get(
        "/analytics/heatmap", t.user_id, **{"from": end.isoformat(), "to": start.isoformat()}
    )
    assert backwards.status_code == 422 and backwards.json()["errors"]
    garbage = await service.get("/analytics/heatmap", t.user_id, **{"from": "not-a-date"})
    assert garbage.status_code == 422


async def test_weekly_summary_of_a_past_week_without_a_target(service: Service) -> None:
    t = FakeTracking()
    goal = t.create_goal()
    week = date(2025, 12, 29)  # a Monday; the week spans two years
    t.set_target(goal, week + timedelta(days=7), 120)  # the next week's target only
    t.create_log(goal, week, 30)
    t.create_log(goal, date(2026, 1, 1), 45)
    t.create_log(goal, date(2026, 1, 4), 1)  # the least that makes a day active
    t.create_log(goal, date(2026, 1, 5), 500)  # next week
    await service.send(t)
    body = (
        await service.get("/analytics/weekly-summary", t.user_id, week_start=week.isoformat())
    ).json()
    assert body.pop("as_of") is not None and body.pop("pending") is False
    assert body == {
        "week_start": "2025-12-29",
        "week_end": "2026-01-04",
        "goal_id": goal,
        "target_minutes": None,
        "logged_minutes": 76,
        "progress_percent": None,
        "active_days": 3,
        "days": [
            {"date": (week + timedelta(days=n)).isoformat(), "minutes": m}
            for n, m in enumerate([30, 0, 0, 45, 0, 0, 1])
        ],
    }
    nxt = (
        await service.get(
            "/analytics/weekly-summary",
            t.user_id,
            week_start=(week + timedelta(days=7)).isoformat(),
        )
    ).json()
    assert nxt["target_minutes"] == 120 and nxt["progress_percent"] == round(50000 / 120, 1)
    tuesday = await service.get("/analytics/weekly-summary", t.user_id, week_start="2025-12-30")
    assert tuesday.status_code == 422
    assert tuesday.json()["errors"][0]["loc"] == ["query", "week_start"]
    missing = await service.get("/analytics/weekly-summary", t.user_id, goal_id="nope")
    assert missing.status_code == 404


async def test_today_is_the_users_today_in_kiritimati_and_pago_pago(service: Service) -> None:
    now = datetime.now(UTC)
    for zone in ("Pacific/Kiritimati", "Pacific/Pago_Pago"):
        t = FakeTracking()
        t.register(zone)
        goal = t.create_goal()
        local_today = now.astimezone(ZoneInfo(zone)).date()
        # Only the user's own today and yesterday are active.
        t.create_log(goal, local_today, 25)
        t.create_log(goal, local_today - timedelta(days=1), 25)
        t.set_target(goal, monday(local_today), 100)
        await service.send(t)
        streak = (await service.get("/analytics/streak", t.user_id)).json()
        assert streak["current_streak"] == 2, zone
        dash = (await service.get("/analytics/dashboard", t.user_id)).json()
        assert dash["week_start"] == monday(local_today).isoformat(), zone
        logged = 50 if monday(local_today) < local_today else 25
        assert dash["weekly_logged_minutes"] == logged, zone
        assert dash["weekly_target_minutes"] == 100, zone
        heat = (await service.get("/analytics/heatmap", t.user_id)).json()
        assert heat["to"] == local_today.isoformat(), zone
        assert heat["days"][-1] == {
            "date": local_today.isoformat(),
            "minutes": 25,
            "level": 4,
            "state": "active",
        }
    # Kiritimati (UTC+14) is always a day ahead of Pago Pago (UTC-11).
    k = now.astimezone(ZoneInfo("Pacific/Kiritimati")).date()
    p = now.astimezone(ZoneInfo("Pacific/Pago_Pago")).date()
    assert k - p == timedelta(days=1)


async def test_timezone_changes_keep_the_latest_even_out_of_order(service: Service) -> None:
    t = FakeTracking()
    t.register("UTC")
    t.set_timezone("Pacific/Kiritimati")
    t.set_timezone("Pacific/Pago_Pago")
    events = t.take()
    from analytics_support import publish

    await publish(service.redis, service.settings.events_stream, [events[2], events[1], events[0]])
    await service.wait_drained()
    user = await service.repo.get_user(t.user_id)
    assert user is not None and user.timezone == "Pacific/Pago_Pago"


async def test_user_deletion_wipes_the_projection(service: Service) -> None:
    t = FakeTracking()
    goal = t.create_goal()
    t.create_log(goal, today_utc(), 60)
    t.set_target(goal, monday(today_utc()), 60)
    await service.send(t)
    assert (await service.get("/analytics/dashboard", t.user_id)).json()["total_minutes"] == 60
    t.delete_user()
    t.create_log(goal, today_utc(), 60)  # a straggler after the deletion
    await service.send(t)
    dash = (await service.get("/analytics/dashboard", t.user_id)).json()
    assert dash["total_minutes"] == 0 and dash["active_goal"] is None
    assert await service.repo.months.count_documents({"user_id": t.user_id}) == 0
    assert await service.repo.targets.count_documents({"user_id": t.user_id}) == 0


async def test_health_db_and_openapi(service: Service) -> None:
    response = await service.client.get("/health/db")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "mongodb": "ok", "redis": "ok"}
    spec = (await service.client.get("/openapi.json")).json()
    heat = spec["paths"]["/analytics/heatmap"]["get"]
    assert {"401", "422"} <= set(heat["responses"])
    assert "application/problem+json" in heat["responses"]["422"]["content"]
    assert "404" in spec["paths"]["/analytics/weekly-summary"]["get"]["responses"]
    props = heat["responses"]["200"]["content"]["application/json"]["schema"]
    assert props


async def test_dashboard_without_an_active_goal_sums_the_week_of_every_goal(
    service: Service,
) -> None:
    t = FakeTracking()
    first = t.create_goal("First", active=False)
    second = t.create_goal("Second", active=False)
    today = today_utc()
    monday = today - timedelta(days=today.weekday())
    t.create_log(first, monday, 20)
    t.create_log(second, today, 25)
    t.create_log(second, monday - timedelta(days=1), 40)  # last week: not this week's
    await service.send(t)
    body = (await service.get("/analytics/dashboard", t.user_id)).json()
    assert body["active_goal"] is None
    assert body["weekly_logged_minutes"] == 45
    assert body["weekly_target_minutes"] is None and body["weekly_progress_percent"] is None
    summary = (await service.get("/analytics/weekly-summary", t.user_id)).json()
    assert summary["logged_minutes"] == body["weekly_logged_minutes"]


async def test_a_goals_streak_and_runs_count_that_goal_only(service: Service) -> None:
    """``goal_id`` scopes the streak and its runs; an unknown or deleted goal is a 404."""
    t = FakeTracking()
    piano = t.create_goal("Piano")
    chess = t.create_goal("Chess", active=False)
    doomed = t.create_goal("Doomed", active=False)
    today = today_utc()
    for n in range(3):  # piano: today and the two days before
        t.create_log(piano, today - timedelta(days=n), 20)
    t.create_log(chess, today - timedelta(days=1), 15)  # chess: yesterday alone
    t.create_log(chess, today - timedelta(days=5), 15)
    t.create_log(doomed, today, 5)
    t.delete_goal(doomed)
    await service.send(t)

    piano_streak = (await service.get("/analytics/streak", t.user_id, goal_id=piano)).json()
    assert (piano_streak["goal_id"], piano_streak["current_streak"]) == (piano, 3)
    chess_streak = (await service.get("/analytics/streak", t.user_id, goal_id=chess)).json()
    assert (chess_streak["current_streak"], chess_streak["longest_streak"]) == (1, 1)
    assert chess_streak["last_activity_date"] == (today - timedelta(days=1)).isoformat()
    runs = (await service.get("/analytics/streaks", t.user_id, goal_id=chess)).json()
    assert [(r["start"], r["length"]) for r in runs["items"]] == [
        ((today - timedelta(days=1)).isoformat(), 1),
        ((today - timedelta(days=5)).isoformat(), 1),
    ]
    for path in ("/analytics/streak", "/analytics/streaks"):
        for goal in (doomed, "0" * 24):
            response = await service.get(path, t.user_id, goal_id=goal)
            assert response.status_code == 404, (path, goal)
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["detail"] == "Goal not found."


async def test_runs_in_recent_order_come_latest_first(service: Service) -> None:
    t = FakeTracking()
    goal = t.create_goal()
    today = today_utc()
    for back in (12, 11, 10, 5, 2, 1, 0):  # runs of 3, 1 and 3 days, the last going on
        t.create_log(goal, today - timedelta(days=back), 20)
    await service.send(t)
    body = (await service.get("/analytics/streaks", t.user_id, order="recent")).json()
    assert [(r["start"], r["length"]) for r in body["items"]] == [
        ((today - timedelta(days=2)).isoformat(), 3),
        ((today - timedelta(days=5)).isoformat(), 1),
        ((today - timedelta(days=12)).isoformat(), 3),
    ]
    two = (await service.get("/analytics/streaks", t.user_id, order="recent", limit=2)).json()
    assert [r["length"] for r in two["items"]] == [3, 1]

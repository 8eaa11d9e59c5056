"""Issue 15's streak rules through the gateway, on the stack's test clock: the daily goal,
rest weekdays, breaks (all goals and one goal's), freezes, today's status, at_risk,
expires_at, the runs list and the heatmap's day states, for users in New York and Berlin
across their DST days, Kiritimati (UTC+14), Pago Pago (UTC-11), Kathmandu (+5:45), and a
day_start on a DST day; and timezone moves (a date skipped across the date line, a date
repeated, the 36-hour grace), one of them on a DST day with a day_start.

Analytics is fed by events: each read waits (a bound, not a speed assertion) until it
shows what the writes before it imply, then asserts the whole answer.
"""

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import httpx
from momentum_libs.clock import FileClock
from momentum_libs.devstack import Stack

from .conftest import Account, assert_problem
from .test_local_days import created, post_break, settled, user_at
from .test_tracking_e2e import create_goal, wait_for

ANALYTICS_GROUP = "analytics"


def user_with(
    gateway: httpx.Client,
    stack: Stack,
    clock: FileClock,
    timezone: str,
    day_start: str = "00:00",
    **day_settings: Any,
) -> Account:
    """A user set up well before the days the test looks at, with these day settings."""
    account = user_at(gateway, stack, clock, timezone, day_start)
    if day_settings:
        r = gateway.patch("/users/me", json=day_settings, headers=account.headers)
        assert r.status_code == 200, r.text
        settled(stack, account, 3 if day_start != "00:00" else 2)
    return account


def log_days(
    gateway: httpx.Client, account: Account, goal_id: str, first: str, n: int, minutes: int = 30
) -> None:
    start = date.fromisoformat(first)
    for k in range(n):
        day = (start + timedelta(days=k)).isoformat()
        body = {"goal_id": goal_id, "date": day, "minutes": minutes}
        r = gateway.post("/daily-logs", json=body, headers=account.headers)
        assert r.status_code == 201, r.text


def read(
    gateway: httpx.Client,
    account: Account,
    path: str,
    done: Callable[[dict[str, Any]], bool],
    **params: Any,
) -> dict[str, Any]:
    """The analytics answer once ``done`` holds for it (or the last one, to assert on)."""

    def probe() -> dict[str, Any]:
        r = gateway.get(path, params=params, headers=account.headers)
        assert r.status_code == 200, r.text
        return dict(r.json())

    return wait_for(probe, done)


def streak_of(
    gateway: httpx.Client, account: Account, current: int, **params: Any
) -> dict[str, Any]:
    body = read(
        gateway, account, "/analytics/streak", lambda b: b["current_streak"] == current, **params
    )
    for key in ("as_of", "pending"):
        body.pop(key)
    return body


def states(gateway: httpx.Client, account: Account, first: str, last: str) -> dict[str, str]:
    body = read(
        gateway, account, "/analytics/heatmap", lambda b: True, **{"from": first, "to": last}
    )
    return {d["date"]: d["state"] for d in body["days"]}


def test_new_york_daily_goal_rest_weekend_and_expiry_after_spring_forward(
    gateway: httpx.Client, stack: Stack, stack_clock: FileClock
) -> None:
    account = user_with(
        gateway, stack, stack_clock, "America/New_York",
        daily_goal_minutes=20, rest_weekdays=["sat", "sun"],
    )  # fmt: skip
    goal = create_goal(gateway, account)["id"]
    stack_clock.set("2026-03-09T12:00:00-04:00")  # Monday, the day after spring-forward
    log_days(gateway, account, goal, "2026-03-02", 5)  # Mon-Fri; the weekend is rest
    log_days(gateway, account, goal, "2026-03-09", 1, minutes=10)  # short of the goal
    assert streak_of(gateway, account, 5) == {
        "current_streak": 5,
        "longest_streak": 5,
        "last_activity_date": "2026-03-06",
        "goal_id": None,
        "today": {"date": "2026-03-09", "status": "pending"},
        "at_risk": True,
        "expires_at": "2026-03-10T04:00:00Z",  # midnight EDT
        "freezes": {"available": 0, "max": 2, "next_in_days": 2},
    }
    assert states(gateway, account, "2026-03-01", "2026-03-10") == {
        "2026-03-01": "none",
        **{f"2026-03-0{d}": "active" for d in range(2, 7)},
        "2026-03-07": "rest",
        "2026-03-08": "rest",
        "2026-03-09": "pending",
        "2026-03-10": "future",
    }
    log_days(gateway, account, goal, "2026-03-09", 1, minutes=10)  # 20 minutes: active
    body = streak_of(gateway, account, 6)
    assert body["today"] == {"date": "2026-03-09", "status": "done"}
    assert (body["at_risk"], body["expires_at"]) == (False, "2026-03-11T04:00:00Z")


def test_berlin_break_across_the_dst_change_neither_breaks_nor_extends(
    gateway: httpx.Client, stack: Stack, stack_clock: FileClock
) -> None:
    account = user_with(gateway, stack, stack_clock, "Europe/Berlin")
    goal = create_goal(gateway, account)["id"]
    stack_clock.set("2026-03-27T10:00:00+01:00")  # Friday
    log_days(gateway, account, goal, "2026-03-23", 5)
    created(post_break(gateway, account, "2026-03-28", "2026-03-29"))  # across 03-29 (CEST)
    stack_clock.set("2026-03-30T10:00:00+02:00")
    body = streak_of(gateway, account, 5)
    assert body["today"] == {"date": "2026-03-30", "status": "pending"}
    assert body["expires_at"] == "2026-03-30T22:00:00Z"  # midnight CEST
    got = states(gateway, account, "2026-03-27", "2026-03-30")
    assert got == {
        "2026-03-27": "active",
        "2026-03-28": "break",
        "2026-03-29": "break",
        "2026-03-30": "pending",
    }
    # Today on a break: its status says so, and the streak is not at risk.
    created(post_break(gateway, account, "2026-03-31"))
    stack_clock.set("2026-03-31T10:00:00+02:00")
    body = read(gateway, account, "/analytics/streak", lambda b: b["today"]["status"] == "break")
    assert (body["today"]["status"], body["at_risk"]) == ("break", False)
    assert body["current_streak"] == 0  # 03-30 was missed (no freeze held): broken


def test_kiritimati_freeze_earned_by_7_days_covers_a_past_miss(
    gateway: httpx.Client, stack: Stack, stack_clock: FileClock
) -> None:
    account = user_with(gateway, stack, stack_clock, "Pacific/Kiritimati")
    goal = create_goal(gateway, account)["id"]
    # 2026-02-10 00:30 in Kiritimati (UTC+14) is still 02-09 in UTC.
    stack_clock.set("2026-02-09T10:30:00+00:00")
    log_days(gateway, account, goal, "2026-02-01", 7)
    log_days(gateway, account, goal, "2026-02-09", 1)  # 02-08 missed: frozen
    assert streak_of(gateway, account, 8) == {
        "current_streak": 8,
        "longest_streak": 8,
        "last_activity_date": "2026-02-09",
        "goal_id": None,
        "today": {"date": "2026-02-10", "status": "pending"},
        "at_risk": True,  # the freeze is spent
        "expires_at": "2026-02-10T10:00:00Z",
        "freezes": {"available": 0, "max": 2, "next_in_days": 6},
    }
    got = states(gateway, account, "2026-02-07", "2026-02-10")
    assert list(got.values()) == ["active", "frozen", "active", "pending"]
    runs = read(gateway, account, "/analytics/streaks", lambda b: bool(b["items"]))
    assert runs["items"] == [{"start": "2026-02-01", "end": "2026-02-09", "length": 8}]


def test_pago_pago_settings_change_keeps_past_days_and_runs_list(
    gateway: httpx.Client, stack: Stack, stack_clock: FileClock
) -> None:
    account = user_with(gateway, stack, stack_clock, "Pacific/Pago_Pago")
    goal = create_goal(gateway, account)["id"]
    stack_clock.set("2026-04-10T12:00:00-11:00")
    log_days(gateway, account, goal, "2026-04-01", 2, minutes=10)
    log_days(gateway, account, goal, "2026-04-05", 5, minutes=10)  # 04-05..09
    r = gateway.patch("/users/me", json={"daily_goal_minutes": 30}, headers=account.headers)
    assert r.status_code == 200, r.text  # from today (04-10) on; the days before keep 1
    log_days(gateway, account, goal, "2026-04-10", 1, minutes=10)
    # 10 minutes today and still pending: both the log and the new goal are applied.
    day = read(
        gateway, account, "/analytics/heatmap",
        lambda b: b["days"][-1] == {"date": "2026-04-10", "minutes": 10, "level": 4,
                                    "state": "pending"},
        **{"from": "2026-04-01", "to": "2026-04-10"},
    )["days"]  # fmt: skip
    assert [d["state"] for d in day] == [
        "active", "active", "missed", "missed", "active", "active", "active", "active",
        "active", "pending",
    ]  # fmt: skip
    body = streak_of(gateway, account, 5)
    assert body["today"] == {"date": "2026-04-10", "status": "pending"}  # 10 < 30 now
    assert body["expires_at"] == "2026-04-11T11:00:00Z"
    longest = read(
        gateway, account, "/analytics/streaks", lambda b: len(b["items"]) == 2,
        order="longest", limit=5,
    )  # fmt: skip
    assert longest["items"] == [
        {"start": "2026-04-05", "end": "2026-04-09", "length": 5},
        {"start": "2026-04-01", "end": "2026-04-02", "length": 2},
    ]
    recent = read(gateway, account, "/analytics/streaks", lambda b: True, order="recent", limit=1)
    assert recent["items"] == [{"start": "2026-04-05", "end": "2026-04-09", "length": 5}]
    bad = gateway.get("/analytics/streaks", params={"order": "best"}, headers=account.headers)
    assert_problem(bad, 422)
    too_many = gateway.get("/analytics/streaks", params={"limit": 51}, headers=account.headers)
    assert_problem(too_many, 422)


def test_kathmandu_goal_streak_has_its_own_breaks_and_the_all_goal_ones(
    gateway: httpx.Client, stack: Stack, stack_clock: FileClock
) -> None:
    account = user_with(gateway, stack, stack_clock, "Asia/Kathmandu")
    a = create_goal(gateway, account, "A")["id"]
    b = create_goal(gateway, account, "B")["id"]
    stack_clock.set("2026-05-04T09:00:00+05:45")
    log_days(gateway, account, a, "2026-05-01", 4)
    log_days(gateway, account, b, "2026-05-01", 3)  # B: 05-01..03, then its own break
    created(post_break(gateway, account, "2026-05-04", "2026-05-05", goal_id=b))
    stack_clock.set("2026-05-06T09:00:00+05:45")
    log_days(gateway, account, b, "2026-05-06", 1)
    # B: 05-04/05 its break, neither breaking nor extending; 05-06 active.
    body = streak_of(gateway, account, 4, goal_id=b)
    assert (body["goal_id"], body["today"]["status"]) == (b, "done")
    # A: 05-05 missed (B's break is not A's): broken, today pending.
    body = streak_of(gateway, account, 0, goal_id=a)
    assert (body["last_activity_date"], body["expires_at"]) == ("2026-05-04", None)
    # All goals: 05-01..04 by A, 05-05 missed: broken; 05-06 by B.
    body = streak_of(gateway, account, 1)
    assert body["expires_at"] == "2026-05-07T18:15:00Z"  # 05-07 ends, at midnight +05:45
    missing = gateway.get(
        "/analytics/streak", params={"goal_id": "0" * 24}, headers=account.headers
    )
    assert_problem(missing, 404)


def test_day_start_on_new_yorks_fall_back_day(
    gateway: httpx.Client, stack: Stack, stack_clock: FileClock
) -> None:
    account = user_with(gateway, stack, stack_clock, "America/New_York", "04:00")
    goal = create_goal(gateway, account)["id"]
    # 2026-11-01 (fall back) 03:30 EST is before 04:00: "today" is still 10-31.
    stack_clock.set("2026-11-01T03:30:00-05:00")
    log_days(gateway, account, goal, "2026-10-30", 2)
    body = streak_of(gateway, account, 2)
    assert body["today"] == {"date": "2026-10-31", "status": "done"}
    # 10-31's day ends at 11-01 04:00 EST; the streak ends with 11-01's, at 11-02 04:00 EST.
    assert body["expires_at"] == "2026-11-02T09:00:00Z"


# -- timezone changes (issue 15, item 8) ---------------------------------------------------
# Analytics reckons a change from its user.updated's changed_at, taken from auth's clock:
# the stack's test clock, which also moves analytics' "now".


def move_to(gateway: httpx.Client, stack: Stack, account: Account, timezone: str, n: int) -> None:
    """Change the user's timezone now (their ``n``-th user.* event) and wait until
    analytics has applied it, so a read cannot answer from the settings before."""
    r = gateway.patch("/users/me", json={"timezone": timezone}, headers=account.headers)
    assert r.status_code == 200, r.text
    settled(stack, account, n, group=ANALYTICS_GROUP)


def test_pago_pago_to_kiritimati_late_in_the_day_skips_a_date_that_breaks_nothing(
    gateway: httpx.Client, stack: Stack, stack_clock: FileClock
) -> None:
    account = user_with(gateway, stack, stack_clock, "Pacific/Pago_Pago")
    goal = create_goal(gateway, account)["id"]
    # 23:30 on 03-10 in Pago Pago is 00:30 on 03-12 in Kiritimati: 03-11 is never today.
    stack_clock.set("2026-03-10T23:30:00-11:00")
    log_days(gateway, account, goal, "2026-03-03", 8)  # 03-03..10: a freeze earned
    move_to(gateway, stack, account, "Pacific/Kiritimati", 2)
    stack_clock.set("2026-03-13T20:00:00+14:00")  # beyond the 36 hours
    # 03-12 was missed: the freeze covers it; 03-11 (skipped) needed none.
    assert streak_of(gateway, account, 8) == {
        "current_streak": 8,
        "longest_streak": 8,
        "last_activity_date": "2026-03-10",
        "goal_id": None,
        "today": {"date": "2026-03-13", "status": "pending"},
        "at_risk": True,
        "expires_at": "2026-03-13T10:00:00Z",  # midnight in Kiritimati
        "freezes": {"available": 0, "max": 2, "next_in_days": 6},
    }
    assert states(gateway, account, "2026-03-10", "2026-03-14") == {
        "2026-03-10": "active",
        "2026-03-11": "skipped",
        "2026-03-12": "frozen",
        "2026-03-13": "pending",
        "2026-03-14": "future",
    }


def test_kiritimati_to_pago_pago_repeats_the_date_and_keeps_the_streak(
    gateway: httpx.Client, stack: Stack, stack_clock: FileClock
) -> None:
    account = user_with(gateway, stack, stack_clock, "Pacific/Kiritimati")
    goal = create_goal(gateway, account)["id"]
    stack_clock.set("2026-03-10T09:00:00+14:00")
    log_days(gateway, account, goal, "2026-03-03", 7)  # 03-03..09: a freeze earned
    move_to(gateway, stack, account, "Pacific/Pago_Pago", 2)
    # 09:30 in Kiritimati is 08:30 on 03-09 in Pago Pago: today stays 03-10, which ends
    # at midnight in Pago Pago; the freeze then covers it, and 03-11 ends the streak.
    stack_clock.set("2026-03-10T09:30:00+14:00")
    expected = {
        "current_streak": 7,
        "longest_streak": 7,
        "last_activity_date": "2026-03-09",
        "goal_id": None,
        "today": {"date": "2026-03-10", "status": "pending"},
        "at_risk": False,
        "expires_at": "2026-03-12T11:00:00Z",
        "freezes": {"available": 1, "max": 2, "next_in_days": 7},
    }
    assert streak_of(gateway, account, 7) == expected
    stack_clock.set("2026-03-10T20:00:00-11:00")  # 03-10 again, beyond the 36 hours
    assert streak_of(gateway, account, 7) == expected
    assert states(gateway, account, "2026-03-09", "2026-03-11") == {
        "2026-03-09": "active",
        "2026-03-10": "pending",
        "2026-03-11": "future",
    }


def test_new_york_to_berlin_the_grace_keeps_the_day_still_today_in_new_york(
    gateway: httpx.Client, stack: Stack, stack_clock: FileClock
) -> None:
    account = user_with(gateway, stack, stack_clock, "America/New_York")
    goal = create_goal(gateway, account)["id"]
    # 20:00 on 03-20 in New York, 01:00 on 03-21 in Berlin: a 6-day streak, no freeze,
    # nothing logged on the 20th yet.
    stack_clock.set("2026-03-20T20:00:00-04:00")
    log_days(gateway, account, goal, "2026-03-14", 6)
    move_to(gateway, stack, account, "Europe/Berlin", 2)
    stack_clock.set("2026-03-21T02:00:00+01:00")  # 21:00 in New York
    assert streak_of(gateway, account, 6) == {
        "current_streak": 6,
        "longest_streak": 6,
        "last_activity_date": "2026-03-19",
        "goal_id": None,
        "today": {"date": "2026-03-20", "status": "pending"},
        "at_risk": True,
        "expires_at": "2026-03-21T04:00:00Z",  # midnight in New York, within the 36 hours
        "freezes": {"available": 0, "max": 2, "next_in_days": 1},
    }
    assert states(gateway, account, "2026-03-19", "2026-03-21") == {
        "2026-03-19": "active",
        "2026-03-20": "pending",
        "2026-03-21": "future",
    }
    stack_clock.set("2026-03-21T06:00:00+01:00")  # the 20th is over in New York too
    body = streak_of(gateway, account, 0)
    assert (body["today"], body["expires_at"]) == (
        {"date": "2026-03-21", "status": "pending"},
        None,
    )


def test_a_move_on_berlins_dst_day_with_a_day_start_keeps_the_day_until_it_starts(
    gateway: httpx.Client, stack: Stack, stack_clock: FileClock
) -> None:
    account = user_with(gateway, stack, stack_clock, "Europe/Berlin", "04:00")
    goal = create_goal(gateway, account)["id"]
    # 2026-03-29, CET to CEST at 02:00: at 23:00 CEST, nothing logged on the 29th, a 6-day
    # streak; Kiritimati is at 11:00 on the 30th.
    stack_clock.set("2026-03-29T23:00:00+02:00")
    log_days(gateway, account, goal, "2026-03-23", 6)
    move_to(gateway, stack, account, "Pacific/Kiritimati", 3)
    stack_clock.set("2026-03-30T03:30:00+02:00")  # before 04:00: still the 29th in Berlin
    assert streak_of(gateway, account, 6) == {
        "current_streak": 6,
        "longest_streak": 6,
        "last_activity_date": "2026-03-28",
        "goal_id": None,
        "today": {"date": "2026-03-29", "status": "pending"},
        "at_risk": True,
        "expires_at": "2026-03-30T02:00:00Z",  # 04:00 CEST, the day start after the change
        "freezes": {"available": 0, "max": 2, "next_in_days": 1},
    }
    log_days(gateway, account, goal, "2026-03-29", 1)  # the old today, logged in time
    body = streak_of(gateway, account, 7)
    assert body["today"] == {"date": "2026-03-30", "status": "pending"}  # Kiritimati's
    assert body["at_risk"] is False  # the 7th day earned a freeze

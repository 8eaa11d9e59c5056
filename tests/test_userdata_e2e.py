"""Exports and imports (docs/api.md, section 8) through the gateway, on the running stack,
and the round trip: export, delete the account, register again, import."""

import csv
import io
import json
import zipfile
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import httpx
from momentum_libs.clock import FileClock
from momentum_libs.devstack import Stack
from momentum_libs.testing.waiting import eventually_blocking
from pymongo import MongoClient

from .conftest import Account, assert_problem, login, new_account, register
from .test_local_days import created, post_break, settled
from .test_streak_rules_e2e import log_days
from .test_tracking_e2e import create_goal

T = TypeVar("T")


def wait_for(probe: Callable[[], T], done: Callable[[T], Any], timeout_s: float = 30.0) -> T:
    """Poll until ``done`` (a bound on waiting, not an assertion on speed)."""
    return eventually_blocking(probe, done, timeout_s=timeout_s)


def days_ago(n: int) -> str:
    return (datetime.now(UTC).date() - timedelta(days=n)).isoformat()


def monday_of(day: str) -> str:
    d = date.fromisoformat(day)
    return (d - timedelta(days=d.weekday())).isoformat()


def post(gw: httpx.Client, account: Account, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = gw.post(path, json=body, headers=account.headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def seed(gw: httpx.Client, account: Account) -> dict[str, Any]:
    """Two goals, a weekly target, four logs (two equal ones on one date)."""
    run = post(gw, account, "/goals", {"title": "Run", "description": "5 km"})
    read = post(gw, account, "/goals", {"title": "Read", "target_date": "2027-01-31"})
    week = monday_of(days_ago(8))
    target = post(
        gw,
        account,
        "/weekly-targets",
        {"goal_id": run["id"], "week_start": week, "target_minutes": 90, "note": "3 runs"},
    )
    logs = [
        post(gw, account, "/daily-logs", {"goal_id": gid, "date": day, "minutes": m, "note": n})
        for gid, day, m, n in (
            (run["id"], days_ago(3), 30, "easy"),
            (run["id"], days_ago(2), 20, None),
            (read["id"], days_ago(2), 15, None),
            (read["id"], days_ago(2), 15, None),
        )
    ]
    return {"goals": [run, read], "target": target, "logs": logs, "week": week}


def export(gw: httpx.Client, account: Account, fmt: str) -> tuple[dict[str, Any], bytes]:
    r = gw.post("/exports", json={"format": fmt}, headers=account.headers)
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert accepted["status"] in ("pending", "running", "ready") and accepted["id"]

    def state() -> dict[str, Any]:
        got = gw.get(f"/exports/{accepted['id']}", headers=account.headers)
        assert got.status_code == 200, got.text
        return dict(got.json())

    done = wait_for(state, lambda s: s["status"] in ("ready", "failed"))
    assert done["status"] == "ready", done
    assert done["percent"] == 100
    assert done["download_url"] == f"/exports/{accepted['id']}/download"
    assert datetime.fromisoformat(done["expires_at"]) > datetime.now(UTC)
    file = gw.get(done["download_url"], headers=account.headers)
    assert file.status_code == 200, file.text
    return done, file.content


def import_file(
    gw: httpx.Client, account: Account, content: bytes, media_type: str, **params: Any
) -> httpx.Response:
    headers = {**account.headers, "Content-Type": media_type}
    return gw.post("/imports", content=content, headers=headers, params=params)


def report_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return dict(response.json())


def counts(
    goals: int = 0, weekly_targets: int = 0, daily_logs: int = 0, breaks: int = 0
) -> dict[str, int]:
    return {
        "goals": goals,
        "weekly_targets": weekly_targets,
        "daily_logs": daily_logs,
        "breaks": breaks,
    }


# -- export -------------------------------------------------------------------------------
def test_a_json_export_holds_every_record_settings_and_derived_history(
    gateway: httpx.Client,
) -> None:
    account = new_account(gateway, timezone="UTC")
    seeded = seed(gateway, account)
    _, content = export(gateway, account, "json")
    document = json.loads(content)
    assert document["format"] == "momentum-export"
    assert {g["id"] for g in document["goals"]} == {g["id"] for g in seeded["goals"]}
    assert [t["id"] for t in document["weekly_targets"]] == [seeded["target"]["id"]]
    assert sorted(lg["id"] for lg in document["daily_logs"]) == sorted(
        lg["id"] for lg in seeded["logs"]
    )
    run = next(g for g in document["goals"] if g["title"] == "Run")
    assert run["description"] == "5 km" and run["is_active"] is True
    derived = document["derived"]
    assert "derived" in derived["note"] or "computed" in derived["note"]
    assert derived["day_totals"] == [
        {"date": days_ago(3), "minutes": 30},
        {"date": days_ago(2), "minutes": 50},
    ]
    assert derived["streak_runs"] == [{"start": days_ago(3), "end": days_ago(2), "days": 2}]
    logged = sum(
        lg["minutes"]
        for lg in seeded["logs"]
        if lg["goal_id"] == run["id"] and monday_of(lg["date"]) == seeded["week"]
    )
    assert derived["weekly_results"] == [
        {
            "goal_id": run["id"],
            "week_start": seeded["week"],
            "target_minutes": 90,
            "logged_minutes": logged,
            "met": logged >= 90,
        }
    ]


def test_a_csv_export_is_a_zip_of_one_file_per_resource_type(gateway: httpx.Client) -> None:
    account = new_account(gateway, timezone="Asia/Tokyo")
    day = {"day_start": "05:00", "rest_weekdays": ["sun", "wed"], "daily_goal_minutes": 25}
    assert gateway.patch("/users/me", json=day, headers=account.headers).status_code == 200
    seeded = seed(gateway, account)
    wait_for(
        lambda: json.loads(export(gateway, account, "json")[1])["user"]["settings"],
        lambda s: s is not None and s["daily_goal_minutes"] == 25,
    )
    _, content = export(gateway, account, "csv")
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        names = set(archive.namelist())
        assert {"goals.csv", "weekly_targets.csv", "daily_logs.csv", "breaks.csv"} <= names
        assert {"derived/day_totals.csv", "derived/streak_runs.csv"} <= names
        logs = list(csv.DictReader(io.StringIO(archive.read("daily_logs.csv").decode())))
        settings = list(csv.DictReader(io.StringIO(archive.read("settings.csv").decode())))
        history = list(csv.DictReader(io.StringIO(archive.read("settings_history.csv").decode())))
        breaks = archive.read("breaks.csv").decode().splitlines()
    assert sorted(r["id"] for r in logs) == sorted(lg["id"] for lg in seeded["logs"])
    assert breaks[0].startswith("id,")  # a header even with no rows
    assert settings == [
        {"timezone": "Asia/Tokyo", "day_start": "05:00", "rest_weekdays": "wed sun",
         "daily_goal_minutes": "25"}
    ]  # fmt: skip
    assert [h["rest_weekdays"] for h in history] == ["wed sun"]


def test_an_export_is_its_users_alone(gateway: httpx.Client) -> None:
    owner = new_account(gateway)
    seed(gateway, owner)
    done, _ = export(gateway, owner, "json")
    other = new_account(gateway)
    assert_problem(gateway.get(f"/exports/{done['id']}", headers=other.headers), 404)
    assert_problem(gateway.get(done["download_url"], headers=other.headers), 404)
    assert_problem(gateway.get(done["download_url"]), 401)
    assert_problem(gateway.get("/exports/not-an-id", headers=owner.headers), 404)


def test_a_bad_export_request_is_422(gateway: httpx.Client) -> None:
    account = new_account(gateway)
    assert_problem(gateway.post("/exports", json={"format": "xml"}, headers=account.headers), 422)
    assert_problem(gateway.post("/exports", json={}, headers=account.headers), 422)


def test_a_deleted_account_takes_its_exports(gateway: httpx.Client, stack: Stack) -> None:
    account = new_account(gateway)
    done, _ = export(gateway, account, "json")
    assert gateway.delete("/users/me", headers=account.headers).status_code == 204
    with MongoClient(stack.mongodb_url) as mongo:
        exports = mongo[stack.database("tracking")]["exports"]
        wait_for(lambda: exports.count_documents({"_id": done["id"]}), lambda n: n == 0)
        assert exports.count_documents({"_id": done["id"]}) == 0


# -- import -------------------------------------------------------------------------------
def simple_csv(rows: list[str]) -> bytes:
    return ("date,minutes,goal,note\n" + "\n".join(rows) + "\n").encode()


def test_a_csv_of_logs_imports_once_and_a_dry_run_writes_nothing(gateway: httpx.Client) -> None:
    account = new_account(gateway)
    content = simple_csv(
        [
            f"{days_ago(4)},25,Guitar,scales",
            f"{days_ago(3)},40,Guitar,",
            f"{days_ago(3)},40,Guitar,",  # the same twice in the file: two logs
            f"{days_ago(2)},10,Spanish,",
            "not-a-date,10,Spanish,",
            f"{days_ago(2)},0,Spanish,",
        ]
    )
    dry = report_of(import_file(gateway, account, content, "text/csv", dry_run="true"))
    assert dry["dry_run"] is True
    assert dry["created"] == counts(goals=2, daily_logs=4)
    assert [p["row"] for p in dry["problems"]] == ["line 6", "line 7"]
    assert all(p["detail"] for p in dry["problems"])
    listed = gateway.get("/goals", headers=account.headers).json()["items"]
    assert listed == []  # nothing written

    first = report_of(import_file(gateway, account, content, "text/csv", mode="merge"))
    assert first["created"] == counts(goals=2, daily_logs=4)
    assert first["created"] == dry["created"] and first["problems"] == dry["problems"]
    logs = gateway.get("/daily-logs", headers=account.headers, params={"limit": 200}).json()
    assert sorted(lg["minutes"] for lg in logs["items"]) == [10, 25, 40, 40]
    assert {lg["note"] for lg in logs["items"]} == {"scales", None}

    second = report_of(import_file(gateway, account, content, "text/csv"))
    assert second["created"] == counts() and second["updated"] == counts()
    assert second["skipped"] == counts(goals=2, daily_logs=4)
    again = gateway.get("/daily-logs", headers=account.headers, params={"limit": 200}).json()
    assert len(again["items"]) == 4


def loop_export(checkmarks: list[str]) -> bytes:
    """Loop Habit Tracker's CSV export as its HabitsCSVExporter writes it (iSoron/uhabits,
    uhabits-core/assets/test/csv_export): Habits.csv, the root Checkmarks.csv (newest day
    first, a trailing comma, entries by name, a numerical habit's amount in thousandths)
    and a folder per habit that an import does not need."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "Habits.csv",
            "Position,Name,Type,Question,Description,FrequencyNumerator,FrequencyDenominator,"
            "Color,Unit,Target Type,Target Value,Archived?\n"
            "001,Meditate,YES_NO,Did you meditate today?,Ten minutes,1,1,#FF8F00,,,,false\n"
            "002,Floss,YES_NO,Did you floss?,,2,3,#00897B,,,,false\n"
            "003,Practice,NUMERICAL,How long did you practice?,,1,1,#3949AB,minutes,"
            "AT_LEAST,20.0,false\n"
            "004,Read,NUMERICAL,How many pages?,,1,1,#8E24AA,pages,AT_LEAST,10.0,true\n",
        )
        archive.writestr(
            "Checkmarks.csv",
            "Date,Meditate,Floss,Practice,Read,\n" + "".join(f"{row},\n" for row in checkmarks),
        )
        archive.writestr("001 Meditate/Checkmarks.csv", "Date,Value,Notes\n")
        archive.writestr("001 Meditate/Scores.csv", "Date,Score\n")
    return buffer.getvalue()


def test_loop_habit_trackers_export_imports_its_checked_days(gateway: httpx.Client) -> None:
    account = new_account(gateway)
    content = loop_export(
        [  # newest first, as Loop writes it
            f"{days_ago(1)},YES_MANUAL,NO,25500,UNKNOWN",
            f"{days_ago(2)},YES_AUTO,YES_MANUAL,0,12000",
            f"{days_ago(3)},YES_MANUAL,UNKNOWN,UNKNOWN,0",
            f"{days_ago(4)},SKIP,YES_MANUAL,90000,SKIP",
            f"{days_ago(5)},2,1,NO,NO",  # an older Loop's numbers: 2 by hand, 1 inferred
        ]
    )
    report = report_of(
        import_file(gateway, account, content, "application/zip", minutes_per_check=15)
    )
    assert report["format"] == "loop"
    assert report["created"] == counts(goals=4, daily_logs=8), report
    assert report["settings_status"] == "none"
    goals = {g["title"]: g for g in gateway.get("/goals", headers=account.headers).json()["items"]}
    assert goals["Meditate"]["description"] == "Ten minutes"
    logs = gateway.get("/daily-logs", headers=account.headers, params={"limit": 200}).json()
    by_goal = {
        title: sorted(
            (lg["date"], lg["minutes"]) for lg in logs["items"] if lg["goal_id"] == g["id"]
        )
        for title, g in goals.items()
    }
    # Yes/no habits: only days checked by hand (YES_MANUAL, or 2), each minutes_per_check;
    # an inferred day (YES_AUTO, 1), NO, SKIP and UNKNOWN are none. A numerical habit in
    # minutes logs its amount (25500 thousandths: 25.5, rounded), one in pages a check.
    assert by_goal == {
        "Meditate": sorted([(days_ago(1), 15), (days_ago(3), 15), (days_ago(5), 15)]),
        "Floss": sorted([(days_ago(2), 15), (days_ago(4), 15)]),
        "Practice": sorted([(days_ago(1), 26), (days_ago(4), 90)]),
        "Read": [(days_ago(2), 15)],
    }
    twice = report_of(
        import_file(gateway, account, content, "application/zip", minutes_per_check=15)
    )
    assert twice["created"] == counts() and twice["skipped"] == counts(goals=4, daily_logs=8)


def test_bad_import_files_are_clear_4xx(gateway: httpx.Client) -> None:
    account = new_account(gateway)
    cases = [
        (b"<xml/>", "application/xml", 415),
        (b"{not json", "application/json", 422),
        (b'{"goals": []}', "application/json", 422),  # not a Momentum export
        (b"when,how long\n", "text/csv", 422),
        (b"\xff\xfe\x00", "text/csv", 422),
        (b"PK not a zip", "application/zip", 422),
        (zip_without_habits(), "application/zip", 422),
        (b"x" * (2 * 1024 * 1024), "text/csv", 413),
    ]
    for content, media_type, status in cases:
        body = assert_problem(import_file(gateway, account, content, media_type), status)
        assert body["detail"], (media_type, body)
    assert_problem(import_file(gateway, account, simple_csv([]), "text/csv", mode="replace"), 422)


def zip_without_habits() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("Checkmarks.csv", "Date\n")
    return buffer.getvalue()


# -- the round trip -------------------------------------------------------------------------
def figures_of(response: httpx.Response) -> dict[str, Any]:
    """An analytics answer without its freshness (when it was read, whether it lags)."""
    assert response.status_code == 200, response.text
    return {k: v for k, v in response.json().items() if k not in ("as_of", "pending")}


def analytics_figures(gw: httpx.Client, account: Account, week: str) -> dict[str, Any]:
    """What analytics shows the user, without the ids an account's records get."""
    dashboard = figures_of(gw.get("/analytics/dashboard", headers=account.headers))
    active = dashboard.pop("active_goal")
    goals = gw.get("/goals", headers=account.headers).json()["items"]
    run = next(g for g in goals if g["title"] == "Run")
    weekly = figures_of(
        gw.get(
            "/analytics/weekly-summary",
            params={"week_start": week, "goal_id": run["id"]},
            headers=account.headers,
        )
    )
    weekly.pop("goal_id")
    heatmap = figures_of(
        gw.get(
            "/analytics/heatmap",
            params={"from": days_ago(30), "to": days_ago(0)},
            headers=account.headers,
        )
    )
    return {
        "active_goal": active and active["title"],
        "dashboard": dashboard,
        "streak": figures_of(gw.get("/analytics/streak", headers=account.headers)),
        "weekly": weekly,
        "heatmap": heatmap,
    }


def records(gw: httpx.Client, account: Account) -> dict[str, Any]:
    """The user's goals, targets and logs, by what they hold (ids differ by account)."""
    goals = gw.get("/goals", headers=account.headers).json()["items"]
    title = {g["id"]: g["title"] for g in goals}
    targets = gw.get("/weekly-targets", headers=account.headers).json()["items"]
    logs = gw.get("/daily-logs", params={"limit": 200}, headers=account.headers).json()["items"]
    return {
        "goals": sorted(
            (g["title"], g["description"], g["target_date"], g["is_active"]) for g in goals
        ),
        "targets": sorted(
            (title[t["goal_id"]], t["week_start"], t["target_minutes"], t["note"]) for t in targets
        ),
        "logs": sorted(
            (title[lg["goal_id"]], lg["date"], lg["minutes"], lg["note"] or "") for lg in logs
        ),
    }


def settings_of(gw: httpx.Client, account: Account) -> dict[str, Any]:
    me = gw.get("/users/me", headers=account.headers).json()
    return {k: me[k] for k in ("timezone", "day_start", "rest_weekdays", "daily_goal_minutes")}


def registered_again(gw: httpx.Client, account: Account) -> Account:
    """The account deleted, and a new one registered with its email (default settings)."""
    assert gw.delete("/users/me", headers=account.headers).status_code == 204
    user = register(gw, email=account.email)
    pair = login(gw, str(user["email"]))
    return Account(
        account.email, account.password, user, pair["access_token"], pair["refresh_token"]
    )


def test_export_delete_register_import_restores_everything(gateway: httpx.Client) -> None:
    # Registered with the defaults, as the account the import goes to will be, and moved
    # to Berlin by a change: the two histories then have the same shape, so they agree on
    # "today" at any hour. Registered in Berlin, this account's first day would be
    # Berlin's date, and between midnight and 04:00 there a change never takes the user
    # back a day (the day floor), while the new account, which started in UTC, is still on
    # the day before: a real difference of histories, not of the import.
    account = new_account(gateway)
    day = {
        "timezone": "Europe/Berlin",
        "day_start": "04:00",
        "rest_weekdays": ["sat"],
        "daily_goal_minutes": 15,
    }
    patched = gateway.patch("/users/me", json=day, headers=account.headers)
    assert patched.status_code == 200, patched.text
    seeded = seed(gateway, account)
    # The Read goal active, not the first one: the import must restore which is active.
    read_id = seeded["goals"][1]["id"]
    assert gateway.patch(f"/goals/{read_id}/activate", headers=account.headers).status_code == 200
    before = records(gateway, account)
    wait_for(
        lambda: analytics_figures(gateway, account, seeded["week"]),
        lambda f: f["dashboard"]["total_minutes"] == 80 and f["active_goal"] == "Read",
    )
    figures = analytics_figures(gateway, account, seeded["week"])
    settings = settings_of(gateway, account)
    # Tracking's copy of the day settings comes from auth's events: the export has them all.
    content = wait_for(
        lambda: export(gateway, account, "json")[1],
        lambda c: json.loads(c)["user"]["settings"] == settings,
    )
    assert json.loads(content)["user"]["settings"] == settings

    again = registered_again(gateway, account)
    assert records(gateway, again) == {"goals": [], "targets": [], "logs": []}
    fresh = settings_of(gateway, again)
    assert fresh != settings

    # A dry run reports the file's settings and applies nothing.
    dry = report_of(import_file(gateway, again, content, "application/json", dry_run="true"))
    assert dry["created"] == counts(goals=2, weekly_targets=1, daily_logs=4)
    assert (dry["settings"], dry["settings_status"]) == (settings, "not_applied")
    report = report_of(import_file(gateway, again, content, "application/json"))
    assert report["created"] == counts(goals=2, weekly_targets=1, daily_logs=4), report
    assert report["problems"] == []
    # The import itself restores them: auth applies them, no PATCH from the client.
    assert (report["settings"], report["settings_status"]) == (settings, "applying")
    assert wait_for(lambda: settings_of(gateway, again), lambda s: s == settings) == settings

    assert records(gateway, again) == before
    after = wait_for(
        lambda: analytics_figures(gateway, again, seeded["week"]),
        lambda f: f == figures,
    )
    assert after == figures
    # And the same file again changes nothing.
    twice = report_of(import_file(gateway, again, content, "application/json"))
    assert twice["created"] == counts() and twice["updated"] == counts()
    assert twice["skipped"] == counts(goals=2, weekly_targets=1, daily_logs=4)
    assert records(gateway, again) == before
    assert settings_of(gateway, again) == settings


# -- derived streak runs, and restoring the days before the account ----------------------
def streak_runs(gw: httpx.Client, account: Account, n: int) -> list[dict[str, Any]]:
    """GET /analytics/streaks's runs, oldest first, once it lists ``n``."""

    def probe() -> list[dict[str, Any]]:
        r = gw.get("/analytics/streaks", params={"order": "recent"}, headers=account.headers)
        assert r.status_code == 200, r.text
        return list(reversed(r.json()["items"]))

    return wait_for(probe, lambda runs: len(runs) == n)


def streak_figures(gw: httpx.Client, account: Account) -> dict[str, Any]:
    heatmap = gw.get(
        "/analytics/heatmap", params={"from": "2026-01-01", "to": "2026-01-23"},
        headers=account.headers,
    )  # fmt: skip
    return {
        "streak": figures_of(gw.get("/analytics/streak", headers=account.headers)),
        "heatmap": figures_of(heatmap),
        "runs": streak_runs(gw, account, 2),
    }


def test_derived_runs_are_analytics_runs_and_an_import_restores_past_days(
    gateway: httpx.Client, stack: Stack, stack_clock: FileClock
) -> None:
    """Rest Sundays, a daily goal of 20, a break, a freeze earned and spent: the export's
    derived runs are GET /analytics/streaks's. Imported into a new account (two weeks
    later), its settings history and break restore those past days: the same runs."""
    stack_clock.set("2026-01-05T12:00:00+00:00")  # a Monday
    account = new_account(gateway, timezone="UTC")
    day = {"rest_weekdays": ["sun"], "daily_goal_minutes": 20}
    assert gateway.patch("/users/me", json=day, headers=account.headers).status_code == 200
    settled(stack, account, 2)
    goal = create_goal(gateway, account, "Run")["id"]
    created(post_break(gateway, account, "2026-01-14", "2026-01-15"))
    stack_clock.set("2026-01-22T12:00:00+00:00")  # a Thursday
    for first, n, minutes in (
        ("2026-01-05", 6, 30),  # Mon-Sat; Sunday the 11th is a rest day
        ("2026-01-12", 2, 30),  # the 7th active day (12th) earns a freeze; 14-15 a break
        ("2026-01-17", 1, 30),  # the 16th missed: the freeze covers it
        ("2026-01-19", 1, 10),  # under the daily goal: missed, no freeze, the run ends
        ("2026-01-20", 2, 30),
    ):
        log_days(gateway, account, goal, first, n, minutes)
    # From today on, a day needs 40 minutes: none of the past days would be active by it.
    raised = gateway.patch("/users/me", json={"daily_goal_minutes": 40}, headers=account.headers)
    assert raised.status_code == 200, raised.text
    settled(stack, account, 3)
    runs = [
        {"start": "2026-01-05", "end": "2026-01-17", "length": 9},
        {"start": "2026-01-20", "end": "2026-01-21", "length": 2},
    ]
    assert streak_runs(gateway, account, 2) == runs
    figures = streak_figures(gateway, account)
    document = json.loads(export(gateway, account, "json")[1])
    derived = [{"start": r["start"], "end": r["end"], "length": r["days"]}
               for r in document["derived"]["streak_runs"]]  # fmt: skip
    assert derived == runs
    assert document["user"]["settings_history"] == [
        {"effective_date": "2026-01-05", "timezone": "UTC", "day_start": "00:00",
         "rest_weekdays": ["sun"], "daily_goal_minutes": 20},
        {"effective_date": "2026-01-22", "timezone": "UTC", "day_start": "00:00",
         "rest_weekdays": ["sun"], "daily_goal_minutes": 40},
    ]  # fmt: skip

    again = registered_again(gateway, account)  # its first day: the 22nd
    settled(stack, again, 1)
    # A hand-edited file cannot excuse the new account's own days: a break reaching its
    # first day is a row's problem, and settings dated from it on are dropped.
    forged = {**document["breaks"][0], "start_date": "2026-01-19", "end_date": "2026-01-22"}
    document["breaks"].append(forged)
    document["user"]["settings_history"].append(
        {**document["user"]["settings_history"][0], "effective_date": "2026-01-23",
         "rest_weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}
    )  # fmt: skip
    report = report_of(
        import_file(gateway, again, json.dumps(document).encode(), "application/json")
    )
    assert report["created"] == counts(goals=1, daily_logs=12, breaks=1), report
    assert [p["row"] for p in report["problems"]] == ["breaks[1]"]
    assert "2026-01-22" in report["problems"][0]["detail"]
    assert report["settings_status"] == "applying"
    wait_for(lambda: settings_of(gateway, again), lambda s: s["daily_goal_minutes"] == 40)
    assert wait_for(lambda: streak_figures(gateway, again), lambda f: f == figures) == figures
    # The export is tracking's: its consumer applies the user.updated apart from analytics'.
    history = wait_for(
        lambda: json.loads(export(gateway, again, "json")[1])["user"]["settings_history"],
        lambda h: len(h) == 2,
    )
    assert [h["effective_date"] for h in history] == ["2026-01-05", "2026-01-22"]
    # The days before the account keep their settings; from its first day on, the file's
    # current ones (not the forged entry).
    assert [(h["rest_weekdays"], h["daily_goal_minutes"]) for h in history] == [
        (["sun"], 20),
        (["sun"], 40),
    ]


def test_settings_auth_would_refuse_are_a_rows_problem_not_applied(
    gateway: httpx.Client,
) -> None:
    account = new_account(gateway, timezone="UTC")
    good = {"timezone": "Asia/Tokyo", "day_start": "00:00", "rest_weekdays": [],
            "daily_goal_minutes": 5}  # fmt: skip
    file = {"format": "momentum-export", "version": 1, "goals": [],
            "user": {"settings": {**good, "timezone": "Mars/Olympus"}}}  # fmt: skip
    report = report_of(import_file(gateway, account, json.dumps(file).encode(), "application/json"))
    assert report["settings_status"] == "not_applied"
    assert [p["row"] for p in report["problems"]] == ["user.settings"]
    assert "timezone" in report["problems"][0]["detail"]
    # A bad history entry is left out on its own; the rest still goes to the account.
    bad_entry = {**good, "effective_date": "2026-02-30"}
    file["user"] = {"settings": good, "settings_history": [bad_entry]}
    report = report_of(import_file(gateway, account, json.dumps(file).encode(), "application/json"))
    assert report["settings_status"] == "applying"
    assert [p["row"] for p in report["problems"]] == ["user.settings_history[0]"]
    assert wait_for(lambda: settings_of(gateway, account), lambda s: s == good) == good
    # A file from before exports carried every setting: what it lacks stays as it is.
    old = json.dumps({**file, "user": {"settings": {"timezone": "Europe/Paris"}}}).encode()

    def dry_settings() -> dict[str, Any]:
        dry = report_of(import_file(gateway, account, old, "application/json", dry_run="true"))
        return dict(dry["settings"])

    expected = {**good, "timezone": "Europe/Paris"}
    assert wait_for(dry_settings, lambda s: s == expected) == expected  # tracking has heard
    report = report_of(import_file(gateway, account, old, "application/json"))
    assert report["settings_status"] == "applying"
    assert wait_for(lambda: settings_of(gateway, account), lambda s: s == expected) == expected

"""Users' local days through the gateway: day settings, /users/me/today, breaks, log dates.

The stack computes "today" on its test clock (``stack_clock``, momentum_libs.clock), set
here to instants on DST days and around local midnights far from UTC's. Tracking learns a
user's timezone and day_start from auth's events: ``settled`` waits until its consumer
has handled the user's latest one, so each rule is checked with the settings known.
"""

from datetime import date, timedelta
from typing import Any

import httpx
import pytest
import redis
from momentum_libs.clock import FileClock
from momentum_libs.devstack import Stack
from momentum_libs.events import EventType
from pymongo import MongoClient

from .conftest import Account, assert_problem, new_account
from .test_tracking_e2e import create_goal, user_events, wait_for

TRACKING_GROUP = "tracking"
USER_EVENTS = (EventType.USER_REGISTERED, EventType.USER_UPDATED)


def _entry_key(entry_id: str) -> tuple[int, int]:
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)


def settled(stack: Stack, account: Account, events: int, group: str = TRACKING_GROUP) -> None:
    """Wait until the user's ``events``-th user.* event is on the stream and the consumer
    of ``group`` (tracking's) has handled (and acknowledged) it: from then on it applies it."""
    client = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    try:

        def latest() -> str | None:
            entries: Any = client.xrange(stack.events_stream)
            ids: list[str] = [
                entry_id
                for entry_id, fields in entries
                if '"user_id":"' + str(account.user["id"]) + '"' in fields["event"]
                and any(f'"type":"{t.value}"' in fields["event"] for t in USER_EVENTS)
            ]
            return ids[events - 1] if len(ids) >= events else None

        entry = wait_for(latest, lambda found: found is not None)
        assert entry is not None
        consumed(stack, group, entry)
    finally:
        client.close()


def consumed(stack: Stack, group_name: str, entry: str) -> None:
    """Wait until consumer group ``group_name`` has handled the stream entry ``entry``."""
    client = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    try:

        def handled() -> bool:
            groups: Any = client.xinfo_groups(stack.events_stream)
            group = next((g for g in groups if g["name"] == group_name), None)
            if group is None or _entry_key(group["last-delivered-id"]) < _entry_key(entry):
                return False
            return not client.xpending_range(stack.events_stream, group_name, entry, entry, 1)

        assert wait_for(handled, bool), f"{group_name} did not handle {entry}"
    finally:
        client.close()


def today_of(gateway: httpx.Client, account: Account) -> dict[str, Any]:
    r = gateway.get("/users/me/today", headers=account.headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


def user_at(
    gateway: httpx.Client,
    stack: Stack,
    clock: FileClock,
    timezone: str,
    day_start: str = "00:00",
    *,
    set_up_at: str = "2026-01-05T12:00:00+00:00",
) -> Account:
    """A user of that timezone and day_start, registered and set up at ``set_up_at`` (well
    before the instants the tests look at, so the settings apply to them), settled."""
    clock.set(set_up_at)
    account = new_account(gateway, timezone=timezone)
    events = 1
    if day_start != "00:00":
        r = gateway.patch("/users/me", json={"day_start": day_start}, headers=account.headers)
        assert r.status_code == 200, r.text
        events = 2
    settled(stack, account, events)
    return account


def post_break(
    gateway: httpx.Client, account: Account, start: str, end: str | None = None, **fields: Any
) -> httpx.Response:
    body = {"start_date": start, "end_date": end or start, "kind": "vacation", **fields}
    return gateway.post("/breaks", json=body, headers=account.headers)


def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    return dict(response.json())


# -- settings and today ------------------------------------------------------------------


def test_day_settings_on_the_user(
    gateway: httpx.Client, stack: Stack, stack_clock: FileClock
) -> None:
    stack_clock.set("2026-02-02T12:00:00+00:00")
    account = new_account(gateway, timezone="Europe/Berlin")
    assert (account.user["rest_weekdays"], account.user["day_start"]) == ([], "00:00")
    assert account.user["daily_goal_minutes"] == 1
    body = {"rest_weekdays": ["sun", "wed"], "day_start": "05:45", "daily_goal_minutes": 30}
    r = gateway.patch("/users/me", json=body, headers=account.headers)
    assert r.status_code == 200, r.text
    assert r.json()["rest_weekdays"] == ["wed", "sun"]
    assert gateway.get("/users/me", headers=account.headers).json() == r.json()
    for bad in (
        {"day_start": "06:15"},
        {"day_start": "01:20"},
        {"rest_weekdays": ["someday"]},
        {"daily_goal_minutes": 1441},
        {"daily_goal_minutes": 0},
    ):
        assert_problem(gateway.patch("/users/me", json=bad, headers=account.headers), 422)
    # The change rides on user.updated, with the date it takes effect from.
    [event] = wait_for(
        lambda: user_events(stack, str(account.user["id"]), EventType.USER_UPDATED), bool
    )
    assert event.payload["effective_date"] == "2026-02-02"
    assert event.payload["rest_weekdays"] == ["wed", "sun"]
    assert (event.payload["day_start"], event.payload["daily_goal_minutes"]) == ("05:45", 30)


@pytest.mark.parametrize(
    ("timezone", "day_start", "now", "expected"),
    [
        # New York springs forward on 2026-03-08: 02:30 does not exist, the day begins at
        # 03:00 EDT (07:00Z), lasts 23.5 hours, and one second before it is still the 7th.
        (
            "America/New_York",
            "02:30",
            "2026-03-08T06:59:59Z",
            ("2026-03-07", "2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z"),
        ),
        (
            "America/New_York",
            "02:30",
            "2026-03-08T07:00:00Z",
            ("2026-03-08", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"),
        ),
        # It falls back on 2026-11-01: 01:30 happens twice and the first begins the day.
        (
            "America/New_York",
            "01:30",
            "2026-11-01T05:29:59Z",
            ("2026-10-31", "2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z"),
        ),
        (
            "America/New_York",
            "01:30",
            "2026-11-01T06:15:00Z",
            ("2026-11-01", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"),
        ),
        (
            "America/New_York",
            "00:00",
            "2026-11-01T12:00:00Z",
            ("2026-11-01", "2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z"),
        ),
        # Berlin: 23 hours on 2026-03-29, 25 on 2026-10-25; 02:30 twice on the 25th.
        (
            "Europe/Berlin",
            "00:00",
            "2026-03-29T12:00:00Z",
            ("2026-03-29", "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z"),
        ),
        (
            "Europe/Berlin",
            "02:30",
            "2026-10-25T00:45:00Z",
            ("2026-10-25", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"),
        ),
        # Far from UTC: at 10:30Z it is already tomorrow in Kiritimati, still yesterday
        # in Pago Pago; Kathmandu is 5:45 ahead.
        (
            "Pacific/Kiritimati",
            "00:00",
            "2026-06-01T10:30:00Z",
            ("2026-06-02", "2026-06-01T10:00:00Z", "2026-06-02T10:00:00Z"),
        ),
        (
            "Pacific/Pago_Pago",
            "00:00",
            "2026-06-01T10:30:00Z",
            ("2026-05-31", "2026-05-31T11:00:00Z", "2026-06-01T11:00:00Z"),
        ),
        (
            "Asia/Kathmandu",
            "04:00",
            "2026-06-01T22:00:00Z",
            ("2026-06-01", "2026-05-31T22:15:00Z", "2026-06-01T22:15:00Z"),
        ),
    ],
)
def test_today_by_the_iana_rules(
    gateway: httpx.Client,
    stack: Stack,
    stack_clock: FileClock,
    timezone: str,
    day_start: str,
    now: str,
    expected: tuple[str, str, str],
) -> None:
    account = user_at(gateway, stack, stack_clock, timezone, day_start)
    stack_clock.set(now.replace("Z", "+00:00"))
    today = today_of(gateway, account)
    assert today == {
        "date": expected[0],
        "timezone": timezone,
        "day_start": day_start,
        "starts_at": expected[1],
        "ends_at": expected[2],
    }


def test_a_settings_change_never_moves_today_back(
    gateway: httpx.Client, stack: Stack, stack_clock: FileClock
) -> None:
    """At 01:30 on 10 June in Berlin, day_start 04:00 would make it 9 June again: today
    stays the 10th (and a break for the 9th stays refused) until 04:00 on the 11th."""
    account = user_at(gateway, stack, stack_clock, "Europe/Berlin")
    stack_clock.set("2026-06-10T01:30:00+02:00")
    r = gateway.patch("/users/me", json={"day_start": "04:00"}, headers=account.headers)
    assert r.status_code == 200, r.text
    settled(stack, account, 2)
    today = today_of(gateway, account)
    assert (today["date"], today["starts_at"]) == ("2026-06-10", "2026-06-09T22:00:00Z")
    assert today["ends_at"] == "2026-06-11T02:00:00Z"
    assert_problem(post_break(gateway, account, "2026-06-09"), 422)
    created(post_break(gateway, account, "2026-06-10"))
    stack_clock.set("2026-06-12T03:00:00+02:00")  # before 04:00: the 11th, by the new rule
    assert today_of(gateway, account)["date"] == "2026-06-11"


# -- breaks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timezone", "now", "local_today"),
    [
        # 10:30Z on 1 June: 2 June in Kiritimati (UTC+14), 31 May in Pago Pago (UTC-11).
        ("Pacific/Kiritimati", "2026-06-01T10:30:00+00:00", date(2026, 6, 2)),
        ("Pacific/Pago_Pago", "2026-06-01T10:30:00+00:00", date(2026, 5, 31)),
        ("Asia/Kathmandu", "2026-06-01T18:20:00+00:00", date(2026, 6, 2)),
        ("America/New_York", "2026-03-08T04:30:00+00:00", date(2026, 3, 7)),
    ],
)
def test_a_break_starts_on_the_users_local_today_or_later(
    gateway: httpx.Client,
    stack: Stack,
    stack_clock: FileClock,
    timezone: str,
    now: str,
    local_today: date,
) -> None:
    account = user_at(gateway, stack, stack_clock, timezone)
    stack_clock.set(now)
    yesterday = (local_today - timedelta(days=1)).isoformat()
    problem = assert_problem(post_break(gateway, account, yesterday), 422)
    assert local_today.isoformat() in str(problem["detail"])
    brk = created(post_break(gateway, account, local_today.isoformat()))
    assert brk["start_date"] == brk["end_date"] == local_today.isoformat()


def test_a_day_start_on_a_dst_day_decides_when_a_break_may_start(
    gateway: httpx.Client, stack: Stack, stack_clock: FileClock
) -> None:
    """Berlin springs forward on 2026-03-29: a day_start of 02:30 does not exist that
    day, so the 29th begins at 03:00 CEST (01:00Z). Until then a break may start on the
    28th; from then on it may not."""
    account = user_at(gateway, stack, stack_clock, "Europe/Berlin", "02:30")
    stack_clock.set("2026-03-29T00:59:59+00:00")
    first = created(post_break(gateway, account, "2026-03-28"))
    stack_clock.set("2026-03-29T01:00:00+00:00")
    assert_problem(post_break(gateway, account, "2026-03-28", kind="sick"), 422)
    goal = create_goal(gateway, account)
    assert_problem(post_break(gateway, account, "2026-03-28", goal_id=goal["id"]), 422)
    created(post_break(gateway, account, "2026-03-29", goal_id=goal["id"]))
    # The first one started on the 28th: it cannot be deleted now.
    assert_problem(gateway.delete(f"/breaks/{first['id']}", headers=account.headers), 409)


def test_break_rules(gateway: httpx.Client, stack: Stack, stack_clock: FileClock) -> None:
    account = user_at(gateway, stack, stack_clock, "America/New_York")
    stack_clock.set("2026-07-01T16:00:00+00:00")  # noon, 1 July, in New York
    h = account.headers
    goal = create_goal(gateway, account)

    assert_problem(post_break(gateway, account, "2026-07-05", "2026-07-04"), 422)
    assert_problem(post_break(gateway, account, "2026-07-05", "2026-10-04"), 422)  # 91 days
    ninety = created(post_break(gateway, account, "2026-07-05", "2026-10-03"))
    for bad in (
        {"kind": "holiday"},
        {"note": "n" * 2001},
        {"start_date": "2026-07-05T00:00:00Z"},
        {"user_id": "someone"},
    ):
        assert_problem(post_break(gateway, account, "2026-11-01", **bad), 422)
    assert_problem(post_break(gateway, account, "2026-11-01", goal_id="0" * 24), 404)

    # The same scope may not share a day; another scope may.
    assert_problem(post_break(gateway, account, "2026-10-03", "2026-10-10"), 409)
    for_goal = created(post_break(gateway, account, "2026-07-02", "2026-07-08", goal_id=goal["id"]))
    assert for_goal["goal_id"] == goal["id"]
    assert_problem(post_break(gateway, account, "2026-07-08", goal_id=goal["id"]), 409)

    # Not started: may move, change, be deleted.
    r = gateway.patch(
        f"/breaks/{for_goal['id']}", json={"start_date": "2026-07-03", "note": "x"}, headers=h
    )
    assert r.status_code == 200, r.text
    assert (r.json()["start_date"], r.json()["note"]) == ("2026-07-03", "x")
    assert_problem(
        gateway.patch(f"/breaks/{for_goal['id']}", json={"start_date": "2026-06-30"}, headers=h),
        422,
    )
    assert_problem(
        gateway.patch(f"/breaks/{for_goal['id']}", json={"end_date": "2026-07-02"}, headers=h),
        422,
    )
    assert_problem(gateway.patch(f"/breaks/{ninety['id']}", json={"kind": None}, headers=h), 422)
    assert_problem(
        gateway.patch(f"/breaks/{ninety['id']}", json={"goal_id": goal["id"]}, headers=h), 422
    )
    spare = created(post_break(gateway, account, "2026-12-01"))
    assert gateway.delete(f"/breaks/{spare['id']}", headers=h).status_code == 204
    assert_problem(gateway.get(f"/breaks/{spare['id']}", headers=h), 404)

    # Ten days later the long break has started: its end moves, down to yesterday.
    stack_clock.set("2026-07-15T16:00:00+00:00")
    assert_problem(gateway.delete(f"/breaks/{ninety['id']}", headers=h), 409)
    assert_problem(
        gateway.patch(f"/breaks/{ninety['id']}", json={"start_date": "2026-07-16"}, headers=h),
        409,
    )
    assert_problem(
        gateway.patch(f"/breaks/{ninety['id']}", json={"end_date": "2026-07-13"}, headers=h), 422
    )
    r = gateway.patch(f"/breaks/{ninety['id']}", json={"end_date": "2026-07-14"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["end_date"] == "2026-07-14"
    # Over (it ended yesterday, and now before yesterday): its dates are history.
    stack_clock.set("2026-07-17T16:00:00+00:00")
    assert_problem(
        gateway.patch(f"/breaks/{ninety['id']}", json={"end_date": "2026-07-20"}, headers=h), 409
    )
    # Another user sees none of it.
    other = new_account(gateway)
    assert_problem(gateway.get(f"/breaks/{ninety['id']}", headers=other.headers), 404)
    assert_problem(gateway.delete(f"/breaks/{ninety['id']}", headers=other.headers), 404)

    # Every change went out as an event, with growing versions.
    uid = str(account.user["id"])
    made = wait_for(lambda: user_events(stack, uid, EventType.BREAK_UPDATED), lambda e: len(e) >= 2)
    of_ninety = [
        e.payload["version"]
        for e in user_events(stack, uid, EventType.BREAK_CREATED) + made
        if e.payload["break_id"] == ninety["id"]
    ]
    assert len(of_ninety) == 2 and of_ninety[0] == 1 < of_ninety[1], of_ninety
    deleted = user_events(stack, uid, EventType.BREAK_DELETED)
    # analytics and tracking read break events (and the new user fields) and skip them:
    # none is dead-lettered.
    client = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    try:
        last: Any = client.xrevrange(stack.events_stream, count=1)
        for group in ("analytics", TRACKING_GROUP):
            consumed(stack, group, last[0][0])
            dead: Any = client.xrange(f"{stack.events_stream}.dead.{group}")
            assert not [f for _, f in dead if uid in f.get("event", "")], group
    finally:
        client.close()
    gone = {e.payload["break_id"] for e in deleted}
    # The deleted one, and the refused ones (404, 409: written, then taken back), not
    # the breaks that stay.
    assert spare["id"] in gone
    assert not gone & {ninety["id"], for_goal["id"]}


def test_breaks_list_latest_first_by_range_in_pages(
    gateway: httpx.Client, stack: Stack, stack_clock: FileClock
) -> None:
    account = user_at(gateway, stack, stack_clock, "Europe/Berlin")
    stack_clock.set("2026-08-01T10:00:00+00:00")
    starts = [f"2026-08-{day:02d}" for day in (1, 4, 7, 10, 13)]
    ids = [created(post_break(gateway, account, s, s))["id"] for s in starts]
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        r = gateway.get("/breaks", params=params, headers=account.headers)
        assert r.status_code == 200, r.text
        items += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert [b["id"] for b in items] == ids[::-1]
    r = gateway.get(
        "/breaks", params={"from": "2026-08-04", "to": "2026-08-10"}, headers=account.headers
    )
    assert [b["start_date"] for b in r.json()["items"]] == [
        "2026-08-10",
        "2026-08-07",
        "2026-08-04",
    ]
    assert_problem(
        gateway.get(
            "/breaks", params={"from": "2026-08-10", "to": "2026-08-01"}, headers=account.headers
        ),
        422,
    )
    assert_problem(gateway.get("/breaks", params={"cursor": "nope"}, headers=account.headers), 422)


def test_deleting_a_goal_or_the_account_deletes_its_breaks(
    gateway: httpx.Client, stack: Stack, stack_clock: FileClock
) -> None:
    account = user_at(gateway, stack, stack_clock, "Asia/Kathmandu")
    stack_clock.set("2026-09-01T06:00:00+00:00")
    goal = create_goal(gateway, account)
    of_goal = created(post_break(gateway, account, "2026-09-01", "2026-09-03", goal_id=goal["id"]))
    of_all = created(post_break(gateway, account, "2026-09-01", "2026-09-03"))
    assert gateway.delete(f"/goals/{goal['id']}", headers=account.headers).status_code == 204
    assert_problem(gateway.get(f"/breaks/{of_goal['id']}", headers=account.headers), 404)
    assert gateway.get(f"/breaks/{of_all['id']}", headers=account.headers).status_code == 200
    # A started break of every goal goes with the account.
    assert gateway.delete("/users/me", headers=account.headers).status_code == 204
    with MongoClient(stack.mongodb_url) as mongo:
        breaks = mongo[stack.database("tracking")]["breaks"]
        days = mongo[stack.database("tracking")]["user_days"]
        uid = str(account.user["id"])
        wait_for(lambda: breaks.count_documents({"user_id": uid}), lambda n: n == 0)
        assert breaks.count_documents({"user_id": uid}) == 0
        assert days.count_documents({"_id": uid}) == 0
    gone = [e.payload["break_id"] for e in user_events(stack, uid, EventType.BREAK_DELETED)]
    assert sorted(gone) == sorted([of_goal["id"], of_all["id"]])


# -- log dates ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timezone", "now", "local_tomorrow"),
    [
        # UTC's tomorrow is 2 June; Kiritimati's is the 3rd, Pago Pago's the 1st.
        ("Pacific/Kiritimati", "2026-06-01T10:30:00+00:00", date(2026, 6, 3)),
        ("Pacific/Pago_Pago", "2026-06-01T10:30:00+00:00", date(2026, 6, 1)),
        # Berlin's 25-hour day: 23:30Z on 24 October is already the 25th there.
        ("Europe/Berlin", "2026-10-24T23:30:00+00:00", date(2026, 10, 26)),
    ],
)
def test_a_log_may_be_dated_up_to_the_users_local_tomorrow(
    gateway: httpx.Client,
    stack: Stack,
    stack_clock: FileClock,
    timezone: str,
    now: str,
    local_tomorrow: date,
) -> None:
    account = user_at(gateway, stack, stack_clock, timezone)
    stack_clock.set(now)
    goal = create_goal(gateway, account)
    after = (local_tomorrow + timedelta(days=1)).isoformat()
    body = {"goal_id": goal["id"], "minutes": 10}
    r = gateway.post(
        "/daily-logs", json={**body, "date": local_tomorrow.isoformat()}, headers=account.headers
    )
    assert r.status_code == 201, r.text
    problem = assert_problem(
        gateway.post("/daily-logs", json={**body, "date": after}, headers=account.headers), 422
    )
    assert problem["errors"][0]["loc"] == ["body", "date"]
    moved = gateway.patch(
        f"/daily-logs/{r.json()['id']}", json={"date": after}, headers=account.headers
    )
    assert_problem(moved, 422)
    keyed = gateway.post(
        "/daily-logs",
        json={**body, "date": after},
        headers={**account.headers, "Idempotency-Key": "too-late"},
    )
    assert_problem(keyed, 422)

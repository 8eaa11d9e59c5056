"""The offline-client simulation of issue 16: device A queues 500 random operations while
offline, then replays them through PUT, PATCH, DELETE and /batch with lost responses
(retries), duplicates and reordering; device B follows /changes throughout. At the end A
(after its own sync), B, tracking and analytics agree exactly, and the server holds what
A meant: every resource A kept, with A's last values, and none A deleted.

The replay is what a careful client does: one FIFO queue per resource (a resource's
next write waits for its previous one's answer), resources sent in a shuffled order
(so a log may reach the server before its goal; a goal's delete alone waits for
every earlier write, as its cascade acts on what the server has), a 404 or 409 retried
in a later round, dropped only when a round makes no progress (the oldest stuck write:
its goal went, by another of A's writes).
"""

import random
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from .conftest import Account
from .test_sync_changes_e2e import Device, server_state
from .test_tracking_e2e import wait_for

OPS = 500
RETRYABLE = (404, 409)


@dataclass
class Op:
    op: str  # put | patch | delete
    type: str  # goal | weekly_target | daily_log
    id: str
    body: dict[str, Any] | None = None
    waits_for: int = 0
    """A goal's delete: sent only once every op queued before it is settled (its cascade
    acts on the server's state: a log A moved off the goal must be moved first)."""

    def batch_op(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": self.op, "type": self.type, "id": self.id}
        if self.body is not None:
            out["body"] = self.body
        return out


PATHS = {"goal": "/goals", "weekly_target": "/weekly-targets", "daily_log": "/daily-logs"}


@dataclass
class Offline:
    """Device A's own model while offline, and the writes it queued."""

    rng: random.Random
    today: date
    goals: dict[str, dict[str, Any]] = field(default_factory=dict)
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)
    logs: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted: set[tuple[str, str]] = field(default_factory=set)
    queue: list[Op] = field(default_factory=list)

    def step(self) -> None:
        r = self.rng.random()
        if not self.goals or (r < 0.04 and len(self.goals) < 5):
            self._put("goal", str(uuid.uuid4()), {"title": f"goal {len(self.queue)}"})
        elif r < 0.08:
            self._put("goal", self._pick(self.goals), {"title": f"renamed {len(self.queue)}"})
        elif r < 0.09 and len(self.goals) > 1:
            self._delete_goal(self._pick(self.goals))
        elif r < 0.17:
            self._new_target()
        elif r < 0.22 and self.targets:
            target_id = self._pick(self.targets)
            minutes = self.rng.randint(30, 600)
            self._put(
                "weekly_target", target_id, {**self.targets[target_id], "target_minutes": minutes}
            )
        elif r < 0.26 and self.targets:
            self._delete("weekly_target", self._pick(self.targets))
        elif r < 0.62 or not self.logs:
            self._put("daily_log", str(uuid.uuid4()), self._log_body())
        elif r < 0.74:
            log_id = self._pick(self.logs)
            change = {"minutes": self.rng.randint(1, 300)}
            self.logs[log_id] = {**self.logs[log_id], **change}
            self.queue.append(Op("patch", "daily_log", log_id, change))
        elif r < 0.86:
            self._put("daily_log", self._pick(self.logs), self._log_body())
        else:
            self._delete("daily_log", self._pick(self.logs))

    def _pick(self, items: dict[str, Any]) -> str:
        return self.rng.choice(sorted(items))

    def _log_body(self) -> dict[str, Any]:
        day = self.today - timedelta(days=self.rng.randint(0, 40))
        note = self.rng.choice([None, "easy", "hard"])
        return {"goal_id": self._pick(self.goals), "date": day.isoformat(),
                "minutes": self.rng.randint(1, 300), "note": note}  # fmt: skip

    def _new_target(self) -> None:
        goal_id = self._pick(self.goals)
        monday = self.today - timedelta(days=self.today.weekday() + 7 * self.rng.randint(0, 5))
        taken = {(t["goal_id"], t["week_start"]) for t in self.targets.values()}
        if (goal_id, monday.isoformat()) not in taken:
            body = {"goal_id": goal_id, "week_start": monday.isoformat(),
                    "target_minutes": self.rng.randint(30, 600), "note": None}  # fmt: skip
            self._put("weekly_target", str(uuid.uuid4()), body)

    def _put(self, kind: str, item_id: str, body: dict[str, Any]) -> None:
        self._store(kind)[item_id] = dict(body)
        self.queue.append(Op("put", kind, item_id, dict(body)))

    def _delete(self, kind: str, item_id: str) -> None:
        del self._store(kind)[item_id]
        self.deleted.add((kind, item_id))
        self.queue.append(Op("delete", kind, item_id))

    def _delete_goal(self, goal_id: str) -> None:
        """The goal's targets and logs are deleted too, each by an op of its own before
        the goal's: replayed out of order, a log's earlier move to this goal may be
        refused (the goal went first) and leave it on its old goal, so the client says
        what it means of each (the server's cascade makes some of them 404s)."""
        for kind in ("weekly_target", "daily_log"):
            for item_id in [i for i, x in self._store(kind).items() if x["goal_id"] == goal_id]:
                self._delete(kind, item_id)
        self._delete("goal", goal_id)
        self.queue[-1].waits_for = len(self.queue) - 1

    def _store(self, kind: str) -> dict[str, dict[str, Any]]:
        return {"goal": self.goals, "weekly_target": self.targets, "daily_log": self.logs}[kind]


class Replay:
    """Device A back online: per-resource FIFO queues, sent with chaos."""

    def __init__(self, gw: httpx.Client, account: Account, rng: random.Random) -> None:
        self.gw, self.account, self.rng = gw, account, rng
        self.requests = 0
        self.dropped: list[Op] = []
        self.history: list[Any] = []

    def run(self, queue: list[Op], device_b: Device) -> None:
        queues: dict[tuple[str, str], deque[Op]] = defaultdict(deque)
        order = {id(op): n for n, op in enumerate(queue)}
        for op in queue:
            queues[(op.type, op.id)].append(op)
        while queues:
            settled_before = min(order[id(q[0])] for q in queues.values())
            heads = [q[0] for q in queues.values() if q[0].waits_for <= settled_before]
            self.rng.shuffle(heads)  # reordering across resources
            stuck: list[Op] = []
            heads_sent = list(heads)
            while heads:
                size = self.rng.randint(1, 25)
                chunk, heads = heads[:size], heads[size:]
                for op, status in zip(chunk, self._send(chunk), strict=True):
                    self.history.append((op, status))
                    if self._settled(op, status):
                        self._pop(queues, op)
                    else:
                        stuck.append(op)  # the head stays: retried next round
            if stuck and len(stuck) == len(
                heads_sent
            ):  # no progress: A's oldest stuck write is obsolete
                oldest = min(stuck, key=lambda op: order[id(op)])
                self.dropped.append(oldest)
                self._pop(queues, oldest)
            device_b.pull()  # B keeps up while A replays

    def _send(self, chunk: list[Op]) -> list[int]:
        """Answers of one chunk, by /batch or one request each; a lost response (the
        server did it, the client never heard) is sent again, as is a duplicate."""
        statuses = self._once(chunk)
        if self.rng.random() < 0.2:
            statuses = self._once(chunk)  # the first answer was lost: retried whole
        if self.rng.random() < 0.2:
            self._once([self.rng.choice(chunk)])  # a duplicate of one, answer ignored
        return statuses

    def _once(self, chunk: list[Op]) -> list[int]:
        self.requests += 1
        h = self.account.headers
        if self.rng.random() < 0.5:
            r = self.gw.post("/batch", json={"ops": [op.batch_op() for op in chunk]}, headers=h)
            assert r.status_code == 200, r.text
            return [x["status"] for x in r.json()["results"]]
        statuses = []
        for op in chunk:
            self.requests += 1
            path = f"{PATHS[op.type]}/{op.id}"
            if op.op == "delete":
                r = self.gw.delete(path, headers=h)
            else:
                r = self.gw.request(op.op.upper(), path, json=op.body, headers=h)
            statuses.append(r.status_code)
        return statuses

    @staticmethod
    def _settled(op: Op, status: int) -> bool:
        """Done with (2xx, a 410 of a deleted id, a 404 of a delete), or retried later
        (a 404 or 409 that an op of another resource may clear)."""
        if status < 300 or status == 410 or (op.op == "delete" and status == 404):
            return True
        assert status in RETRYABLE, (op, status)  # never a 422 or a 5xx
        return False

    @staticmethod
    def _pop(queues: dict[tuple[str, str], deque[Op]], op: Op) -> None:
        key = (op.type, op.id)
        queues[key].popleft()
        if not queues[key]:
            del queues[key]


def intent(model: Offline) -> dict[str, dict[str, dict[str, Any]]]:
    return {"goal": model.goals, "weekly_target": model.targets, "daily_log": model.logs}


def as_written(kind: str, item: dict[str, Any]) -> dict[str, Any]:
    """The fields of a server's resource A writes."""
    fields = {"goal": ("title",), "weekly_target": ("goal_id", "week_start", "target_minutes",
              "note"), "daily_log": ("goal_id", "date", "minutes", "note")}[kind]  # fmt: skip
    return {f: item.get(f) for f in fields}


def test_an_offline_device_replays_500_operations_and_every_view_agrees(
    gateway: httpx.Client, account: Account
) -> None:
    rng = random.Random(1616)
    today = datetime.now(UTC).date()
    offline = Offline(rng, today)
    while len(offline.queue) < OPS:
        offline.step()
    device_b = Device(gateway, account, limit=200).pull()
    replay = Replay(gateway, account, rng)
    replay.run(offline.queue, device_b)

    # The server holds what A meant: its last values, nothing it deleted.
    server = server_state(gateway, account)
    for kind, items in intent(offline).items():
        got = {i: as_written(kind, x) for i, x in server[kind].items()}
        want = {i: as_written(kind, x) for i, x in items.items()}
        differing = {i: [(o.op, o.body, st) for o, st in replay.history if o.id == i]
                     for i in set(got) ^ set(want)}  # fmt: skip
        assert got == want, (kind, differing)
    assert not {(k, i) for k, items in server.items() for i in items} & offline.deleted
    # Dropped ops are exactly those whose resource A deleted afterwards (with its goal).
    assert all((op.type, op.id) in offline.deleted for op in replay.dropped)

    # Both devices agree with tracking, through /changes alone.
    device_a = Device(gateway, account, limit=50)
    for device in (device_a, device_b):
        assert wait_for(lambda d=device: _in_sync(d, gateway, account), bool)

    # And analytics with both: totals of all time, and every day's minutes.
    logs = server["daily_log"].values()
    total = sum(x["minutes"] for x in logs)
    per_day: dict[str, int] = defaultdict(int)
    for x in logs:
        per_day[x["date"]] += x["minutes"]
    assert sum(x["minutes"] for x in device_b.of("daily_log").values()) == total

    def dashboard() -> Any:
        return gateway.get("/analytics/dashboard", headers=account.headers).json()

    assert wait_for(dashboard, lambda d: d.get("total_minutes") == total)["total_minutes"] == total
    first = (today - timedelta(days=45)).isoformat()
    params = {"from": first, "to": today.isoformat()}
    heatmap = gateway.get("/analytics/heatmap", params=params, headers=account.headers).json()
    assert {d["date"]: d["minutes"] for d in heatmap["days"] if d["minutes"]} == dict(per_day)
    print(f"offline replay: {len(offline.queue)} ops, {replay.requests} requests, "
          f"{len(replay.dropped)} dropped, {len(logs)} logs, {total} minutes")  # fmt: skip


def _in_sync(device: Device, gw: httpx.Client, account: Account) -> bool:
    device.pull()
    return all(device.of(t) == items for t, items in server_state(gw, account).items())

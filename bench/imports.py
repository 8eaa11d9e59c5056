"""Import: one Momentum JSON file of the largest size the service takes, posted through
the gateway, then the same file again (every row then matches: skipped).

The file is the user's own export (so it follows the format exactly) with one goal and
``logs`` daily logs put in; its size is kept under tracking's import limit (1 MiB).
"""

import asyncio
import datetime as dt
import json
import time
from collections.abc import Callable
from typing import Any

from bench.api import Api, User, today_utc

IMPORT_LIMIT_BYTES = 1_048_576


async def measure(api: Api, user: User, logs: int, log: Callable[[str], None]) -> dict[str, Any]:
    body = await _file(api, user, logs)
    if len(body) > IMPORT_LIMIT_BYTES:
        raise ValueError(f"the bench's import file is {len(body)} bytes, over the limit")
    first = await _post(api, user, body)
    again = await _post(api, user, body)
    result = {
        "logs": logs,
        "bytes": len(body),
        "status": first["status"],
        "seconds": first["seconds"],
        # A 504 is the gateway giving up, not the import's speed.
        "logs_per_s": round(logs / first["seconds"], 1) if first["status"] == 200 else None,
        "created": first["created"],
        "again_status": again["status"],
        "again_seconds": again["seconds"],
        "again_skipped": again["skipped"],
    }
    log(
        f"  import of {logs} logs ({len(body)} bytes): {first['status']} in "
        f"{first['seconds']:.2f} s; again (all skipped): {again['status']} in "
        f"{again['seconds']:.2f} s"
    )
    return result


async def _file(api: Api, user: User, logs: int) -> bytes:
    accepted = await api.client.post("/exports", json={"format": "json"}, headers=user.headers)
    export_id = accepted.json()["id"]
    for _ in range(600):
        state = (await api.client.get(f"/exports/{export_id}", headers=user.headers)).json()
        if state["status"] in ("ready", "failed"):
            break
        await asyncio.sleep(0.1)
    if state["status"] != "ready":
        raise RuntimeError(f"the bench's export ended {state['status']}")
    got = await api.client.get(f"/exports/{export_id}/download", headers=user.headers)
    document = got.json()
    document["goals"] = [
        {"id": "imported", "title": "Imported", "description": None, "is_active": False}
    ]
    first_day = today_utc() - dt.timedelta(days=1)
    document["daily_logs"] = [  # three a day, back from yesterday
        {
            "id": f"l{i}",
            "goal_id": "imported",
            "date": (first_day - dt.timedelta(days=i // 3)).isoformat(),
            "minutes": 1 + i % 60,
            "note": None,
        }
        for i in range(logs)
    ]
    return json.dumps(document).encode()


async def _post(api: Api, user: User, body: bytes) -> dict[str, Any]:
    headers = {**user.headers, "Content-Type": "application/json"}
    started = time.perf_counter()
    response = await api.client.post("/imports", content=body, headers=headers, timeout=300)
    seconds = round(time.perf_counter() - started, 3)
    report = response.json() if response.status_code == 200 else {}
    return {
        "status": response.status_code,
        "seconds": seconds,
        "created": (report.get("created") or {}).get("daily_logs"),
        "skipped": (report.get("skipped") or {}).get("daily_logs"),
    }

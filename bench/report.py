"""bench/results/latest.json (the figures) and latest.md (the same, for people)."""

import json
import math
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from momentum_libs.devstack import Stack


@dataclass(frozen=True)
class Target:
    name: str
    section: str
    key: str
    op: str  # "<=" or ">="
    bound: float
    unit: str

    def check(self, value: float | None) -> bool | None:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        return value <= self.bound if self.op == "<=" else value >= self.bound


TARGETS = (
    Target("gateway adds ≤ 1 ms p50 (c=1)", "gateway_overhead", "overhead_p50_ms", "<=", 1.0, "ms"),
    Target(
        "gateway keeps ≥ 70% of direct throughput (c=32)",
        "gateway_overhead",
        "throughput_ratio",
        ">=",
        0.70,
        "x",
    ),
    Target("dashboard p50 3 years ≤ 1.1 x 1 day", "dashboard_flatness", "ratio", "<=", 1.1, "x"),
    Target("streak p50 3 years ≤ 1.1 x 1 day", "streak_flatness", "ratio", "<=", 1.1, "x"),
    Target("event lag p99 ≤ 50 ms at idle", "event_lag", "p99_ms", "<=", 50.0, "ms"),
    Target(
        "another user's GET /auth/me p99 < 100 ms under bursts of 60 logins",
        "login_flood",
        "victim_p99_ms",
        "<=",
        100.0,
        "ms",
    ),
    Target("rebuild ≥ 50,000 logs/s", "rebuild", "logs_per_s", ">=", 50_000, "logs/s"),
    *(
        Target(f"{svc} ≤ 120 MB RSS idle", "memory_mb", svc, "<=", 120.0, "MB")
        for svc in ("gateway", "auth", "tracking", "analytics")
    ),
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(stack: Stack) -> dict[str, Any]:
    """What the figures were taken on; never a host name or a path."""
    return {
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "mongodb": "external (MONGODB_URL)"
        if os.environ.get("MONGODB_URL")
        else "nx-27017 (embedded, in memory)",
        "redis": "external (REDIS_URL)" if os.environ.get("REDIS_URL") else "local redis-server",
        "uvicorn_workers_per_service": 1,
    }


def _clean(value: Any) -> Any:
    """NaN/inf are not JSON: null instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def evaluate(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for target in TARGETS:
        value = results.get(target.section, {}).get(target.key)
        rows.append(
            {
                "target": target.name,
                "value": value,
                "bound": target.bound,
                "unit": target.unit,
                "met": target.check(value),
            }
        )
    return rows


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "not measured"}[met]


def render_markdown(results: dict[str, Any], before: dict[str, Any] | None, notes: str = "") -> str:
    m = results["machine"]
    lines = [
        "# Momentum benchmark results",
        "",
        f"Run: {results['mode']} mode, started {results['started_at']}, "
        f"took {results['total_seconds']} s. Machine: {m['cores']} cores ({m['cpu']}), "
        f"{m['memory_gb']} GB, {m['os']}, Python {m['python']}; MongoDB {m['mongodb']}, "
        f"Redis {m['redis']}; one uvicorn worker per service. Everything (stores, four "
        "services, load generator) shares the same cores.",
        "",
        "Load generators: "
        + ", ".join(f"{k}: {v}" for k, v in results["load_generator"].items())
        + ".",
        "",
        "## Targets",
        "",
        "| target | value | verdict |" + (" before |" if before else ""),
        "|---|---|---|" + ("---|" if before else ""),
    ]
    before_rows = {r["target"]: r for r in evaluate(before)} if before else {}
    for row in results["targets"]:
        line = f"| {row['target']} | {_fmt(row['value'])} {row['unit']} | {_verdict(row['met'])} |"
        if before:
            old = before_rows.get(row["target"], {}).get("value")
            line += f" {_fmt(old)} |"
        lines.append(line)

    g = results.get("gateway_overhead")
    if g and not g.get("skipped"):
        lines += [
            "",
            f"## Gateway overhead — {g['request']}, {g['load_generator']}",
            "",
            "| concurrency | path | p50 ms | p99 ms | req/s | errors | CPU ms/request |",
            "|---|---|---|---|---|---|---|",
        ]
        for conc, row in g["by_concurrency"].items():
            for side in ("direct", "gateway"):
                f = row[side]
                cpu = f.get("cpu_ms_per_request") or {}
                cost = ", ".join(f"{k} {v:.2f}" for k, v in cpu.items() if v >= 0.05)
                lines.append(
                    f"| {conc} | {side} | {_fmt(f['p50_ms'])} | {_fmt(f['p99_ms'])} | "
                    f"{_fmt(f['rps'], 0)} | {f['errors']} | {cost} |"
                )
            lines.append(
                f"| {conc} | gateway - direct | {_fmt(row['overhead_p50_ms'])} | | "
                f"ratio {_fmt(row['throughput_ratio'])} | | |"
            )
        lines += [
            "",
            "p50/p99 are the median of the rounds' (direct and gateway alternate, "
            f"{len(next(iter(g['by_concurrency'].values()))['direct'].get('rounds', [1]))} "
            "rounds each); CPU ms/request is each process's CPU time over the requests "
            "served, which unlike req/s does not depend on what else runs on the machine.",
        ]
    w = results.get("write")
    if w and not w.get("skipped"):
        lines += [
            "",
            "## Write path — POST /daily-logs at the gateway",
            "",
            f"Concurrency {w['concurrency']} over {w['users']} users ({w['load_generator']}): "
            f"**{_fmt(w['rps'], 0)} req/s**, p50 {_fmt(w['p50_ms'])} ms, "
            f"p99 {_fmt(w['p99_ms'])} ms, {w['detail']['errors']} errors in "
            f"{w['detail']['count']} requests. Analytics then needed "
            f"{_fmt(w.get('analytics_catch_up_s'))} s to catch up with a backlog of "
            f"{_fmt(w.get('backlog_events'))} events "
            f"({_fmt(w.get('analytics_events_per_s'), 0)} events/s).",
            "",
            "CPU ms per write: "
            + ", ".join(f"{k} {v:.2f}" for k, v in (w.get("cpu_ms_per_request") or {}).items())
            + f", and the load driver itself {_fmt(w['detail'].get('driver_cpu_ms_per_request'))}"
            + " (analytics' share is what it applied during the run, not the whole backlog).",
        ]
    d = results.get("dashboard_flatness")
    if d and not d.get("skipped"):
        lines += [
            "",
            "## Analytics flatness — GET /analytics/dashboard",
            "",
            f"One day of logs: p50 {_fmt(d['p50_ms_1_day'])} ms (p99 {_fmt(d['p99_ms_1_day'])}). "
            f"{d['history_days']} days ({d['history_logs']:,} logs): "
            f"p50 {_fmt(d['p50_ms_3_years'])} ms (p99 {_fmt(d['p99_ms_3_years'])}). "
            f"Ratio **{_fmt(d['ratio'])}** over {d['samples_each']} interleaved requests each. "
            f"Seeding through the API ran at {_fmt(d['seed_logs_per_s'], 0)} logs/s; analytics "
            f"had applied them all {_fmt(d['analytics_catch_up_s'])} s after the last 201.",
        ]
    s = results.get("streak_flatness")
    if s and not s.get("skipped"):
        lines += [
            "",
            "## Analytics flatness — GET /analytics/streak (same users, interleaved)",
            "",
            f"One day: p50 {_fmt(s['p50_ms_1_day'])} ms (p99 {_fmt(s['p99_ms_1_day'])}); "
            f"three years: p50 {_fmt(s['p50_ms_3_years'])} ms (p99 {_fmt(s['p99_ms_3_years'])}). "
            f"Ratio **{_fmt(s['ratio'])}** over {s['samples_each']} requests each.",
        ]
    e = results.get("event_lag")
    if e and not e.get("skipped"):
        idle, load = e["idle"], e["under_load"]
        bg = load["background_write"]
        lines += [
            "",
            "## Event lag — 201 on POST /daily-logs → dashboard shows it",
            "",
            "| condition | probes | p50 ms | p90 ms | p99 ms | max ms | polls/probe |",
            "|---|---|---|---|---|---|---|",
            f"| idle | {idle['probes']} | {_fmt(idle['p50_ms'])} | {_fmt(idle['p90_ms'])} | "
            f"{_fmt(idle['p99_ms'])} | {_fmt(idle['max_ms'])} | {idle['polls_per_probe']} |",
            f"| under write load | {load['probes']} | {_fmt(load['p50_ms'])} | "
            f"{_fmt(load['p90_ms'])} | {_fmt(load['p99_ms'])} | {_fmt(load['max_ms'])} | "
            f"{load['polls_per_probe']} |",
            *_paced_row(e.get("under_paced_load")),
            "",
            f"Under load: {load.get('method', '')}, while POST /daily-logs ran at "
            f"concurrency {bg['concurrency']} ({_fmt(bg['rps'], 0)} req/s); "
            f"{load['timeouts']} probes were not seen within the wait after the load"
            + (" (their lag counts as the time waited: a lower bound)" if load["timeouts"] else "")
            + ". "
            f"Peak backlog: {_fmt(load['backlog']['max_outbox_pending'])} events unpublished in "
            f"tracking's outbox, {_fmt(load['backlog']['max_consumer_lag'])} on the stream not "
            f"yet read by analytics; analytics then needed {_fmt(load.get('analytics_catch_up_s'))}"
            f" s to catch up ({_fmt(load.get('analytics_events_per_s'), 0)} events/s).",
            *_lag_parts(load),
            *_paced_parts(e.get("under_paced_load")),
        ]
    f = results.get("login_flood")
    if f and not f.get("skipped"):
        lines += _flood_section(f)
    i = results.get("imports")
    if i and not i.get("skipped"):
        lines += [
            "",
            "## Import of a file of the largest size",
            "",
            f"`POST /imports` through the gateway, a Momentum JSON of {_fmt(i.get('logs'))} "
            f"daily logs ({_fmt(i.get('bytes'))} bytes; the limit is 1 MiB): "
            f"**{i.get('status')} in {_fmt(i.get('seconds'))} s** "
            f"({_fmt(i.get('logs_per_s'), 0)} logs/s, {_fmt(i.get('created'))} created). "
            f"The same file again (every row matches, {_fmt(i.get('again_skipped'))} skipped): "
            f"{i.get('again_status')} in {_fmt(i.get('again_seconds'))} s. Analytics then "
            f"needed {_fmt(i.get('analytics_catch_up_s'))} s to count every imported log "
            f"({_fmt(i.get('analytics_events_per_s'), 0)} events/s).",
        ]
    r = results.get("rebuild")
    if r and not r.get("skipped"):
        lines += [
            "",
            "## Rebuild",
            "",
            f"{r.get('command', 'rebuild')}: {_fmt(r.get('logs'))} logs "
            f"of {_fmt(r.get('users'))} users "
            f"in {_fmt(r.get('seconds'))} s = **{_fmt(r.get('logs_per_s'), 0)} logs/s** "
            f"(wall time of the command, interpreter start included). " + (r.get("note") or ""),
        ]
        if r.get("store_read_docs_per_s"):
            lines += [
                "",
                f"The store's own read speed in the same run (one plain read of every log): "
                f"{_fmt(r['store_read_docs_per_s'], 0)} documents/s; the rebuild reached "
                f"**{_fmt(100 * r['of_store_read'], 0)} %** of it.",
            ]
    p = results.get("partitions")
    if p and not p.get("skipped"):
        lines += [
            "",
            f"## Partitioned log — P = {p.get('partitions')}, events/s through the pipeline",
            "",
            "| analytics consumers | events | seconds | events/s |",
            "|---|---|---|---|",
        ]
        for n, run in (p.get("runs") or {}).items():
            lines.append(
                f"| {n} | {_fmt(run.get('events'))} | {_fmt(run.get('seconds'))} | "
                f"{_fmt(run.get('events_per_s'), 0)} |"
            )
        lines += [
            "",
            f"Two replicas / one: **{_fmt(p.get('speedup'))} times**. The backlog is published at "
            "once (the relays held by the log's `draining` count while it was written) and "
            "timed from its first entry until the analytics group acked every partition; "
            "every process shares this machine's cores.",
        ]
    mem = results.get("memory_mb")
    if mem:
        after = results.get("memory_mb_after_load", {})
        lines += [
            "",
            "## Memory — RSS in MB (10^6 bytes)",
            "",
            "| service | idle | after the load |",
            "|---|---|---|",
        ]
        for svc in ("gateway", "auth", "tracking", "analytics"):
            lines.append(f"| {svc} | {_fmt(mem.get(svc), 1)} | {_fmt(after.get(svc), 1)} |")
    if before:
        lines += ["", f"The *before* column: the run of {before.get('started_at', '?')}."]
    if notes:
        lines += ["", notes.strip()]
    lines += [
        "",
        "## Phase durations (s)",
        "",
        ", ".join(f"{k} {v}" for k, v in results.get("phase_seconds", {}).items()),
        "",
    ]
    return "\n".join(lines)


def _paced_row(paced: dict[str, Any] | None) -> list[str]:
    if not paced:
        return []
    rate = paced["background_write"]["rate_per_s"]
    return [
        f"| under paced write load ({_fmt(rate, 0)} req/s) | {paced['probes']} | "
        f"{_fmt(paced['p50_ms'])} | {_fmt(paced['p90_ms'])} | {_fmt(paced['p99_ms'])} | "
        f"{_fmt(paced['max_ms'])} | {paced['polls_per_probe']} |"
    ]


def _paced_parts(paced: dict[str, Any] | None) -> list[str]:
    """The paced row told apart from the closed loop's: the pipeline with CPU to spare."""
    if not paced:
        return []
    bg = paced["background_write"]
    return [
        "",
        f"Paced: the same writers held to {_fmt(bg['rate_per_s'], 0)} req/s (half the closed "
        f"loop's), which they kept at {_fmt(bg['rps'], 0)} req/s; the closed loop leaves no "
        "core idle, so its lag includes waiting for a CPU, and what the paced row keeps of "
        "it is the pipeline's at half the load. Peak backlog: "
        f"{_fmt(paced['backlog']['max_outbox_pending'])} in the outbox, "
        f"{_fmt(paced['backlog']['max_consumer_lag'])} on the stream.",
        *_lag_parts(paced),
    ]


def _lag_parts(load: dict[str, Any]) -> list[str]:
    """Where the lag under load goes: the pipeline (analytics' delay histogram) and the
    dashboard reads that find the probes (the poller's own timings)."""
    applied = load.get("applied_within_s")
    if not applied:
        return []
    shares = ", ".join(f"{_fmt(100 * share, 0)} % within {le} s" for le, share in applied.items())
    return [
        "",
        f"Where it goes: of the events of this phase analytics applied {shares} of the write "
        "that made them (its own histogram `momentum_consumer_event_delay_seconds`: relay, "
        f"stream and projection); a dashboard read took p50 {_fmt(load.get('poll_ms_p50'))} "
        f"ms (p99 {_fmt(load.get('poll_ms_p99'))}) under the same load, and a probe is seen "
        "only when a read that began after its projection returns.",
    ]


def _flood_section(f: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"## Login flood — bursts of {f['burst']} logins from one address, "
        "another user's GET /auth/me meanwhile",
        "",
        "| gateway limits | /auth/me p50 ms | p99 ms | max ms | /auth/me not 200 (statuses) | "
        "attacker's answers |",
        "|---|---|---|---|---|---|",
    ]
    rows = (
        ("no_attack", "defaults, no attack"),
        ("limits_off", "off"),
        ("limits_default", "defaults"),
    )
    for label, name in (row for row in rows if row[0] in f):
        me = f[label]["victim_auth_me"]
        attack = f[label].get("attacker", {}).get("statuses", {})
        answers = _statuses(attack) or "none"
        refused = _statuses({s: n for s, n in me.get("statuses", {}).items() if s != "200"})
        lines.append(
            f"| {name} | {_fmt(me['p50_ms'])} | {_fmt(me['p99_ms'])} | {_fmt(me['max_ms'])} | "
            f"{me['errors']} of {me['count'] + me['errors']}"
            f"{f' ({refused})' if refused else ''} | {answers} |"
        )
    lines += [
        "",
        f"Each setting: {f['seconds']:.0f} s of sequential GET /auth/me by one user while "
        f"another account is logged in {f['burst']} times at once, again as soon as a "
        "burst is answered (the httpx driver, its own process). *Defaults*: "
        "`MOMENTUM_GATEWAY_CLIENT_MAX_IN_FLIGHT` and the rate window as shipped; *off*: "
        "both 0, the gateway before per-client limits. A 429 of the victim's is its own "
        "rate window (`MOMENTUM_GATEWAY_RATE_LIMIT_REQUESTS` a minute per client): alone "
        "on the machine, one sequential client sends faster than that. " + f.get("note", ""),
    ]
    return lines


def _statuses(counts: dict[str, int]) -> str:
    return ", ".join(f"{status}: {n}" for status, n in sorted(counts.items()))


REQUIRED: dict[str, tuple[str, ...]] = {
    "gateway_overhead": (
        "direct_p50_ms",
        "gateway_p50_ms",
        "direct_p99_ms",
        "gateway_p99_ms",
        "direct_rps",
        "gateway_rps",
    ),
    "write": ("rps", "p50_ms", "p99_ms"),
    "dashboard_flatness": ("p50_ms_1_day", "p50_ms_3_years", "ratio"),
    "streak_flatness": ("p50_ms_1_day", "p50_ms_3_years", "ratio"),
    "event_lag": ("p50_ms", "p99_ms", "p99_ms_under_load", "p99_ms_paced"),
    "login_flood": ("victim_p99_ms",),
    "imports": ("logs", "status", "seconds", "logs_per_s", "again_seconds"),
    "rebuild": ("logs", "seconds", "logs_per_s"),
    "partitions": ("events_per_s_1_consumer", "events_per_s_2_consumers", "speedup"),
    "memory_mb": ("gateway", "auth", "tracking", "analytics"),
}


def _complete(results: dict[str, Any]) -> dict[str, Any]:
    """Every key of the issue is there; a phase not run reports null (and says skipped)."""
    for section, keys in REQUIRED.items():
        if section not in results:
            results[section] = {"skipped": True}
        for key in keys:
            results[section].setdefault(key, None)
    return results


def write_results(
    results: dict[str, Any], out: Path, compare: Path | None = None, notes: Path | None = None
) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    results = _complete(_clean(results))
    results["targets"] = evaluate(results)
    before = json.loads(compare.read_text()) if compare else None
    json_path = out / "latest.json"
    md_path = out / "latest.md"
    json_path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    md_path.write_text(render_markdown(results, before, notes.read_text() if notes else ""))
    return json_path, md_path


def main() -> int:
    """Render latest.md again from a latest.json (e.g. after editing the analysis)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.report")
    parser.add_argument("results", type=Path)
    parser.add_argument("--compare", type=Path)
    parser.add_argument("--notes", type=Path)
    args = parser.parse_args()
    results = json.loads(args.results.read_text())
    write_results(results, args.results.parent, compare=args.compare, notes=args.notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

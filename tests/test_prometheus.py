"""A real Prometheus scrapes the test stack: every series exists, and the counters move.

Prometheus (Debian's /usr/bin/prometheus; `make test` installs it) runs on a free port with
a temporary config and storage, scraping each service's /metrics on its own port and the
gateway's metrics listener. Requests, events, a login lock and a dead letter are driven
through the stack, and everything is read back through Prometheus' HTTP API.
"""

import json
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import redis
from momentum_libs.devstack import Stack
from momentum_libs.stores import ManagedProcess, free_port
from momentum_libs.testing.waiting import eventually_blocking

from .conftest import PASSWORD, new_account

JOBS = ("auth", "tracking", "analytics", "gateway")
WAIT_S = 60.0  # bounds a hung scrape; nothing here asserts speed
POLL_S = 0.5  # between queries while waiting: a scrape comes every 2 s


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def ready(self) -> bool:
        """Prometheus answers 503 in plain text, to every API call too, until its TSDB is
        open: on a slow machine that outlasts the first scrapes."""
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=10).status_code == 200
        except httpx.HTTPError:
            return False

    def query(self, promql: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        assert response.headers.get("content-type", "").startswith("application/json"), (
            f"{response.status_code} {response.text[:200]}"
        )
        body = response.json()
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def value(self, promql: str) -> float:
        """The sum of a query's samples; 0 while it has none."""
        return sum(float(r["value"][1]) for r in self.query(promql))

    def labels(self, promql: str, label: str) -> set[str]:
        return {r["metric"].get(label, "") for r in self.query(promql)}

    def rises_above(self, promql: str, before: float) -> bool:
        after = eventually_blocking(
            lambda: self.value(promql), lambda v: v > before, timeout_s=WAIT_S, interval_s=POLL_S
        )
        return after > before


def _scrape_config(stack: Stack) -> dict[str, Any]:
    jobs = []
    for job in JOBS:
        target = urlsplit(stack.metrics_url(job))
        jobs.append(
            {
                "job_name": job,
                "metrics_path": target.path,
                "static_configs": [{"targets": [target.netloc]}],
            }
        )
    return {"global": {"scrape_interval": "2s", "scrape_timeout": "2s"}, "scrape_configs": jobs}


@pytest.fixture(scope="module")
def prometheus(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    assert Path(binary).exists(), "Prometheus is missing: apt-get install -y prometheus"
    workdir = tmp_path_factory.mktemp("prometheus")
    config = workdir / "prometheus.yml"
    config.write_text(json.dumps(_scrape_config(stack)))  # YAML is a superset of JSON
    port = free_port()
    args = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    proc = ManagedProcess("prometheus", args, log_path=workdir / "prometheus.log").start()
    try:
        server = Prometheus(f"http://127.0.0.1:{port}")

        log = workdir / "prometheus.log"
        assert eventually_blocking(server.ready, timeout_s=WAIT_S), log.read_text()[-2000:]
        up = eventually_blocking(
            lambda: server.value("sum(up)"), lambda v: v == len(JOBS), timeout_s=WAIT_S
        )
        assert up == len(JOBS), log.read_text()[-2000:]
        yield server
    finally:
        proc.stop()


def _series_that_differ(prometheus: Prometheus) -> list[str]:
    """Each series whose labels are not yet what the processes describe, with what it has:
    a consumer's or a relay's series appear with its first pass, which may come after the
    scrape that found every job up."""
    every_job = set(JOBS)
    expected: dict[tuple[str, str], set[str]] = {}
    for series in (
        "momentum_http_requests_total",
        "momentum_http_request_duration_seconds_bucket",
        "momentum_revocation_check_failures_total",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
    ):
        expected[(series, "job")] = every_job
    for series in (
        "momentum_outbox_pending_documents",
        "momentum_outbox_oldest_pending_age_seconds",
    ):
        expected[(series, "collection")] = {
            "users",
            "goals",
            "weekly_targets",
            "daily_logs",
            "breaks",
            "settings_imports",
        }
    expected[('momentum_relay_failures_total{job="auth"}', "reason")] = {
        "redis_unavailable",
        "mongodb_unavailable",
        "unexpected",
        "invalid_entry",
    }
    for series in (
        "momentum_consumer_lag_entries",
        "momentum_consumer_pending_entries",
        "momentum_consumer_oldest_pending_age_seconds",
        "momentum_consumer_dead_letters",
        "momentum_consumer_deliveries_total",
        "momentum_consumer_handle_duration_seconds_count",
        "momentum_consumer_event_delay_seconds_count",
    ):
        # auth's group reads the log for an import's settings (user.settings_imported).
        expected[(series, "group")] = {"tracking", "analytics", "auth"}
    expected[('momentum_login_locks_total{job="auth"}', "scope")] = {"email", "address"}
    differ = [
        f"{series} by {label}: {sorted(found)}"
        for (series, label), labels in expected.items()
        if (found := prometheus.labels(series, label)) != labels
    ]
    # The gateway's store series come with its first Redis call (next test).
    stores = prometheus.labels("momentum_store_duration_seconds_count", "job")
    if not stores >= {"auth", "tracking", "analytics"}:
        differ.append(f"momentum_store_duration_seconds_count by job: {sorted(stores)}")
    for series in ("momentum_relay_published_total", "momentum_relay_dead_lettered_total"):
        if not prometheus.query(f'{series}{{job="tracking"}}'):
            differ.append(f"{series} of tracking: none")
    return differ


def test_every_series_exists_for_the_processes_it_describes(prometheus: Prometheus) -> None:
    differ = eventually_blocking(
        lambda: _series_that_differ(prometheus),
        lambda d: d == [],
        timeout_s=WAIT_S,
        interval_s=POLL_S,
    )
    assert differ == []
    # Route templates only: no user id or raw path ever becomes a label.
    routes = prometheus.labels("momentum_http_requests_total", "route")
    assert all(route.startswith("/") or route == "unmatched" for route in routes)
    assert not [route for route in routes if any(c.isdigit() for c in route)], routes


def test_requests_events_logins_and_a_dead_letter_move_their_series(
    prometheus: Prometheus, stack: Stack, gateway: httpx.Client
) -> None:
    queries = {
        "goal_created_at_gateway": 'sum(momentum_http_requests_total{job="gateway",'
        'route="/goals",method="POST",status="201"})',
        "goal_created_at_tracking": 'sum(momentum_http_requests_total{job="tracking",'
        'route="/goals",method="POST",status="201"})',
        "tracking_latency": 'sum(momentum_http_request_duration_seconds_count{job="tracking",'
        'route="/goals/{goal_id}"})',
        "published": 'sum(momentum_relay_published_total{job="tracking"})',
        "acked": 'sum(momentum_consumer_deliveries_total{group="analytics",outcome="acked"})',
        "handled": 'sum(momentum_consumer_handle_duration_seconds_count{group="analytics"})',
        "delayed": 'sum(momentum_consumer_event_delay_seconds_count{group="analytics"})',
        "dead_lettered": 'sum(momentum_consumer_deliveries_total{group="analytics",'
        'outcome="dead_lettered"})',
        "dead_letters": 'sum(momentum_consumer_dead_letters{group="analytics"})',
        "login_failures": "sum(momentum_login_failures_total)",
        "email_locks": 'sum(momentum_login_locks_total{scope="email"})',
        "mongodb_inserts": 'sum(momentum_store_duration_seconds_count{job="tracking",'
        'store="mongodb",command="insert"})',
        "redis_checks": 'sum(momentum_store_duration_seconds_count{job="gateway",'
        'store="redis",command="exists"})',
    }
    before = {name: prometheus.value(query) for name, query in queries.items()}

    account = new_account(gateway)
    goal = gateway.post("/goals", json={"title": "Run"}, headers=account.headers)
    assert goal.status_code == 201, goal.text
    assert gateway.get(f"/goals/{goal.json()['id']}", headers=account.headers).status_code == 200
    for _ in range(11):  # more than 10 failures lock the email
        wrong = gateway.post("/auth/login", json={"email": account.email, "password": "wrong!"})
        assert wrong.status_code == 401
    locked = gateway.post("/auth/login", json={"email": account.email, "password": PASSWORD})
    assert locked.status_code == 429
    with redis.Redis.from_url(stack.redis_url) as client:  # one entry that is no event
        client.xadd(stack.events_stream, {"event": f"not json {uuid.uuid4().hex}"})

    moved = [name for name, query in queries.items() if prometheus.rises_above(query, before[name])]
    assert moved == list(queries)


def test_metrics_are_not_reachable_through_the_gateway(gateway: httpx.Client) -> None:
    assert gateway.get("/metrics").status_code == 404


def test_every_series_the_alerts_and_the_dashboard_read_is_served(
    prometheus: Prometheus,
) -> None:
    """The monitoring component (deploy/k8s/components/monitoring) reads only real series."""
    monitoring = (
        Path(__file__).resolve().parents[1] / "deploy" / "k8s" / "components" / "monitoring"
    )
    read = re.findall(
        r"\b(?:momentum|process)_\w+",
        (monitoring / "prometheusrule.yaml").read_text()
        + (monitoring / "grafana" / "momentum.json").read_text(),
    )

    def missing() -> list[str]:
        response = httpx.get(f"{prometheus.url}/api/v1/label/__name__/values", timeout=10)
        return sorted(set(read) - set(response.json()["data"]))

    still_missing = eventually_blocking(
        missing, lambda m: m == [], timeout_s=WAIT_S, interval_s=POLL_S
    )
    assert still_missing == []

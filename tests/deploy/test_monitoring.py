"""deploy/k8s/components: the monitoring and rebuild-job components render, validate and
say what they mean.

Components are opt-in, so each is rendered on top of the prod overlay by a kustomization
written into a copy of deploy/k8s. The Prometheus Operator's objects are checked against
its CRDs' schemas (the npm package @kubernetes-models/prometheus-operator, installed by
``npm ci`` from tests/deploy/crds/package-lock.json); the alert rules by Prometheus' own
``promtool check rules`` and by the unit tests of alerts.test.yaml (``promtool test rules``).
"""

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from deploy_support import K8S, SERVICES, Manifest, Rendered, kubectl, only_container, pod_spec
from test_kustomize import allowed_sources, kubernetes_version, labels_of, schema_errors, selects

COMPONENTS = K8S / "components"
MONITORING = COMPONENTS / "monitoring"
CRD_VALIDATOR = Path(__file__).resolve().parent / "crds"
PROMETHEUS_KINDS = {"ServiceMonitor", "PrometheusRule"}
MONITORING_NAMESPACE = "namespace:kubernetes.io/metadata.name=monitoring"
# Grafana's variables, as a query sees them once Grafana has substituted them.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$job": ".*"}


def render_with(tmp_path: Path, *components: str) -> Rendered:
    """The prod overlay with these components added to it, as an operator would."""
    tree = tmp_path / "k8s"
    shutil.copytree(K8S, tree)
    kustomization = tree / "overlays" / "prod" / "kustomization.yaml"
    config = yaml.safe_load(kustomization.read_text())
    config["components"] = [f"../../components/{c}" for c in components]
    kustomization.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [kubectl(), "kustomize", str(kustomization.parent)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    manifests = [d for d in yaml.safe_load_all(result.stdout) if d]
    return Rendered("prod+" + "+".join(components), manifests)


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    return render_with(tmp_path_factory.mktemp("monitoring"), "monitoring")


@pytest.fixture(scope="module")
def with_rebuild(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    return render_with(tmp_path_factory.mktemp("rebuild"), "rebuild-job")


@pytest.fixture(scope="module")
def crd_errors() -> "CrdValidator":
    npm = shutil.which("npm")
    assert npm, "the CRD schema check needs Node.js 20+ and npm"
    if not (CRD_VALIDATOR / "node_modules").exists():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=CRD_VALIDATOR, check=True)
    return CrdValidator()


class CrdValidator:
    def __call__(self, manifests: list[Manifest]) -> list[str]:
        result = subprocess.run(
            ["node", "validate.mjs"],
            cwd=CRD_VALIDATOR,
            input=json.dumps(manifests),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        errors: list[str] = json.loads(result.stdout)
        return errors


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: install Debian's prometheus package")
    return subprocess.run([found, *args], capture_output=True, text=True, timeout=60)


def rule_list(rendered: Rendered) -> list[Manifest]:
    groups = rendered.get("PrometheusRule", "momentum")["spec"]["groups"]
    return [rule for group in groups for rule in group["rules"]]


def rules_file(rendered: Rendered, directory: Path) -> Path:
    """The PrometheusRule's groups as a Prometheus rules file, beside alerts.test.yaml."""
    rule = rendered.get("PrometheusRule", "momentum")
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump(rule["spec"]))
    shutil.copy(MONITORING / "alerts.test.yaml", directory / "alerts.test.yaml")
    return path


# ---- rendering and schemas ------------------------------------------------------------


def test_both_components_render_and_every_object_validates(
    monitored: Rendered, with_rebuild: Rendered, crd_errors: CrdValidator
) -> None:
    version = kubernetes_version()
    for rendered in (monitored, with_rebuild):
        core = [m for m in rendered.manifests if m["kind"] not in PROMETHEUS_KINDS]
        errors = [e for m in core if (e := schema_errors(m, version))]
        assert errors == [], "\n".join(errors)
    operator_objects = [m for m in monitored.manifests if m["kind"] in PROMETHEUS_KINDS]
    assert {m["kind"] for m in operator_objects} == PROMETHEUS_KINDS
    assert crd_errors(operator_objects) == []


def test_the_crd_check_is_live(monitored: Rendered, crd_errors: CrdValidator) -> None:
    monitor = copy.deepcopy(monitored.get("ServiceMonitor", "momentum-gateway"))
    monitor["spec"]["endpoints"][0]["port"] = 9100  # a number where the CRD wants a name
    rule = copy.deepcopy(monitored.get("PrometheusRule", "momentum"))
    del rule["spec"]["groups"][0]["name"]
    errors = crd_errors([monitor, rule])
    assert len(errors) == 2 and "port" in errors[0] and "name" in errors[1], errors


# ---- alert rules ------------------------------------------------------------------------


def test_promtool_accepts_the_rules_and_their_unit_tests_pass(
    monitored: Rendered, tmp_path: Path
) -> None:
    path = rules_file(monitored, tmp_path)
    check = promtool("check", "rules", str(path))
    assert check.returncode == 0, check.stdout + check.stderr
    unit = promtool("test", "rules", str(tmp_path / "alerts.test.yaml"))
    assert unit.returncode == 0, unit.stdout + unit.stderr


def test_the_unit_tests_fail_when_a_threshold_moves(monitored: Rendered, tmp_path: Path) -> None:
    path = rules_file(monitored, tmp_path)
    path.write_text(path.read_text().replace("> 0.05", "> 0.5"))
    unit = promtool("test", "rules", str(tmp_path / "alerts.test.yaml"))
    assert unit.returncode != 0 and "MomentumHigh5xxRatio" in unit.stdout + unit.stderr


def test_the_rules_cover_what_an_operator_must_hear_of(monitored: Rendered) -> None:
    rules = [
        r for g in monitored.get("PrometheusRule", "momentum")["spec"]["groups"] for r in g["rules"]
    ]
    watched = {series for r in rules for series in re.findall(r"momentum_\w+", r["expr"])}
    assert {
        "momentum_consumer_dead_letters",
        "momentum_consumer_lag_entries",
        "momentum_consumer_oldest_pending_age_seconds",
        "momentum_outbox_oldest_pending_age_seconds",
        "momentum_http_requests_total",
        "momentum_revocation_check_failures_total",
    } <= watched
    documented = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    for rule in rules:
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), rule["alert"]
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}, rule["alert"]
        anchor = rule["annotations"]["runbook"].partition("#")[2]
        headings = {
            re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.+)$", documented, re.MULTILINE)
        }
        assert anchor in headings, f"{rule['alert']}: docs/operations.md has no #{anchor}"


# ---- scraping ---------------------------------------------------------------------------


def test_every_service_is_scraped_on_a_port_its_service_exposes(monitored: Rendered) -> None:
    services = {s["metadata"]["name"]: s for s in monitored.kind("Service")}
    scraped: dict[str, str] = {}
    for monitor in monitored.kind("ServiceMonitor"):
        for name, service in services.items():
            if selects(monitor["spec"]["selector"], service["metadata"]["labels"]):
                ports = {p["name"] for p in service["spec"]["ports"]}
                (endpoint,) = monitor["spec"]["endpoints"]
                assert endpoint["port"] in ports, f"{name} has no port {endpoint['port']}"
                assert endpoint["path"] == "/metrics"
                scraped[name] = endpoint["port"]
    assert scraped == {
        "gateway": "metrics",
        "auth-service": "http",
        "tracking-service": "http",
        "analytics-service": "http",
    }


def test_the_gateway_serves_metrics_on_its_own_port_never_the_public_one(
    monitored: Rendered,
) -> None:
    gateway = monitored.get("Deployment", "gateway")
    ports = {p["name"]: p["containerPort"] for p in only_container(gateway)["ports"]}
    assert ports == {"http": 8000, "metrics": 9100}
    config = next(
        c
        for c in monitored.kind("ConfigMap")
        if c["metadata"]["name"].startswith("momentum-gateway-")
    )
    assert config["data"]["MOMENTUM_GATEWAY_METRICS_PORT"] == "9100"
    assert config["data"]["MOMENTUM_GATEWAY_METRICS_HOST"] == "0.0.0.0"


def test_monitoring_may_reach_the_metrics_ports_and_nothing_more(monitored: Rendered) -> None:
    apps = {w["metadata"]["name"]: labels_of(w) for w in monitored.kind("Deployment")}
    for name, labels in apps.items():
        assert MONITORING_NAMESPACE in allowed_sources(monitored, labels), name
    for policy in monitored.kind("NetworkPolicy"):
        for rule in policy["spec"].get("ingress", []):
            if any("monitoring" in json.dumps(peer) for peer in rule.get("from", [])):
                ports = {p["port"] for p in rule["ports"]}
                target = policy["spec"]["podSelector"]
                expected = "metrics" if selects(target, apps["gateway"]) else "http"
                assert ports == {expected}, policy["metadata"]["name"]


# ---- the dashboard ----------------------------------------------------------------------


def dashboard(monitored: Rendered) -> Manifest:
    config = monitored.get("ConfigMap", "momentum-grafana-dashboard")
    assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
    parsed: Manifest = json.loads(config["data"]["momentum.json"])
    return parsed


def panel_queries(board: Manifest) -> list[str]:
    queries = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    for name, value in GRAFANA_VARIABLES.items():
        queries = [q.replace(name, value) for q in queries]
    return queries


def test_every_dashboard_query_is_valid_promql(monitored: Rendered, tmp_path: Path) -> None:
    """promtool parses each panel's query, as a recording rule, once Grafana's variables are
    substituted."""
    queries = panel_queries(dashboard(monitored))
    assert len(queries) >= 20
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query{i}", "expr": q} for i, q in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump(rules))
    check = promtool("check", "rules", str(path))
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_dashboard_shows_every_alerted_series(monitored: Rendered) -> None:
    shown = {s for q in panel_queries(dashboard(monitored)) for s in re.findall(r"momentum_\w+", q)}
    shown = {re.sub(r"_(bucket|sum|count)$", "", s) for s in shown}
    alerted = {s for r in rule_list(monitored) for s in re.findall(r"momentum_\w+", r["expr"])}
    assert alerted <= shown, alerted - shown


# ---- the rebuild job --------------------------------------------------------------------


def test_the_rebuild_job_runs_analytics_rebuild_with_analytics_config(
    with_rebuild: Rendered,
) -> None:
    job = with_rebuild.get("Job", "analytics-rebuild")
    container = only_container(job)
    analytics = only_container(with_rebuild.get("Deployment", "analytics-service"))
    assert container["image"] == analytics["image"]
    assert container["command"][0] in entry_points("analytics-service")
    assert "--all" in container["command"]
    config = {r["configMapRef"]["name"] for r in container["envFrom"]}
    assert config <= {r["configMapRef"]["name"] for r in analytics["envFrom"]}
    assert any(name.startswith("momentum-analytics-") for name in config)
    env = {e["name"] for e in container["env"]}
    assert {"MONGODB_URL", "REDIS_URL"} <= env
    spec = pod_spec(job)
    assert spec["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] >= 1
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def entry_points(service: str) -> set[str]:
    import tomllib

    assert service in SERVICES
    project = Path(__file__).resolve().parents[2] / service / "pyproject.toml"
    scripts: dict[str, str] = tomllib.loads(project.read_text())["project"]["scripts"]
    return set(scripts)

"""deploy/k8s: every overlay renders, validates against the Kubernetes schemas, and is safe.

``kubectl kustomize`` renders each overlay; ``kubernetes-validate`` (schemas shipped in
the package; strict, so an unknown or misspelled field fails) checks every object offline.
"""

import copy
import re
import subprocess
from typing import Any

import kubernetes_validate
from deploy_support import (
    DEPLOY,
    K8S,
    SERVICES,
    Manifest,
    Rendered,
    kubectl,
    only_container,
    pod_spec,
    render,
)
from kubernetes_validate.utils import all_versions

STORES = ("mongodb", "redis")
INGRESS_CONTROLLER = "namespace:kubernetes.io/metadata.name=ingress-nginx"


def kubernetes_version() -> str:
    """The schema version to validate against: the kubectl client's minor if shipped."""
    out = subprocess.run(
        [kubectl(), "version", "--client", "-o", "yaml"], capture_output=True, text=True
    ).stdout
    match = re.search(r"gitVersion:\s*v(\d+)\.(\d+)", out)
    assert match, f"cannot read kubectl's version from {out!r}"
    wanted = f"{match[1]}.{match[2]}.0"
    versions = all_versions()
    return wanted if wanted in versions else versions[-1]


def schema_errors(manifest: Manifest, version: str) -> str | None:
    try:
        kubernetes_validate.validate(manifest, version, strict=True)
    except Exception as exc:  # ValidationError, SchemaNotFoundError, InvalidSchemaError
        return f"{manifest['kind']}/{manifest['metadata'].get('name')}: {exc}"
    return None


def labels_of(workload: Manifest) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels", "matchExpressions"}, selector
    wanted: dict[str, str] = selector.get("matchLabels") or {}
    expressions: list[dict[str, Any]] = selector.get("matchExpressions") or []
    assert all(e["operator"] == "In" for e in expressions), (
        f"only matchLabels and In expressions are understood here: {selector}"
    )
    return all(labels.get(k) == v for k, v in wanted.items()) and all(
        labels.get(e["key"]) in e["values"] for e in expressions
    )


def app_workloads(rendered: Rendered) -> dict[str, Manifest]:
    found = {w["metadata"]["name"]: w for w in rendered.kind("Deployment")}
    assert set(found) == set(SERVICES), f"{rendered.overlay}: Deployments {sorted(found)}"
    return found


# ---- rendering and schemas ------------------------------------------------------------


def test_every_overlay_renders(overlay: Rendered) -> None:
    kinds = {m["kind"] for m in overlay.manifests}
    assert {"Deployment", "Service", "ConfigMap", "Ingress", "NetworkPolicy"} <= kinds
    assert {"HorizontalPodAutoscaler", "PodDisruptionBudget", "Namespace"} <= kinds
    namespace = [m["metadata"]["name"] for m in overlay.kind("Namespace")]
    assert len(namespace) == 1
    placed = {m["metadata"].get("namespace") for m in overlay.manifests if m["kind"] != "Namespace"}
    assert placed == set(namespace), "every object in the overlay's namespace"


def test_every_object_validates_against_the_kubernetes_schemas(overlay: Rendered) -> None:
    version = kubernetes_version()
    errors = [e for m in overlay.manifests if (e := schema_errors(m, version))]
    assert errors == [], "\n".join(errors)


def test_the_schema_check_is_strict_and_offline() -> None:
    """The validator is live: a misspelled field in a real Deployment fails it."""
    rendered = Rendered("dev", render(K8S / "overlays" / "dev"))
    deployment = copy.deepcopy(rendered.get("Deployment", "gateway"))
    version = kubernetes_version()
    assert schema_errors(deployment, version) is None
    only_container(deployment)["livenesProbe"] = only_container(deployment).pop("livenessProbe")
    assert schema_errors(deployment, version) is not None


# ---- workloads -------------------------------------------------------------------------


def test_every_container_has_liveness_and_readiness_probes(overlay: Rendered) -> None:
    missing = [
        f"{w['metadata']['name']}/{c['name']}: {probe}"
        for w in overlay.workloads()
        for c in pod_spec(w)["containers"]
        for probe in ("livenessProbe", "readinessProbe")
        if not c.get(probe)
    ]
    assert missing == [], f"{overlay.overlay}: probes missing: {missing}"


def test_services_are_probed_on_their_health_endpoints(overlay: Rendered) -> None:
    for name, workload in app_workloads(overlay).items():
        container = only_container(workload)
        port_names = {p["name"] for p in container["ports"]} | {
            p["containerPort"] for p in container["ports"]
        }
        for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
            probe = container.get(kind)
            if not probe:
                continue
            action = probe.get("httpGet") or probe.get("tcpSocket")
            assert action, f"{name}.{kind}: an HTTP or TCP probe of the service"
            assert action["port"] in port_names, f"{name}.{kind} probes an undeclared port"
            if name == "gateway":
                # GET /health of the gateway checks every service behind it: as a liveness or
                # readiness probe it would take the gateway down whenever one service is.
                assert probe["httpGet"]["path"] == "/livez", f"gateway.{kind}"
            elif kind == "livenessProbe":
                assert probe["httpGet"]["path"] == "/health", f"{name}: liveness on /health"
            else:
                assert probe["httpGet"]["path"] in {"/health", "/health/db"}, f"{name}.{kind}"


def test_services_run_non_root_read_only_without_capabilities(overlay: Rendered) -> None:
    for name, workload in app_workloads(overlay).items():
        spec = pod_spec(workload)
        container = only_container(workload)
        assert spec["automountServiceAccountToken"] is False, name
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] != 0, name
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True, name
        assert sc["allowPrivilegeEscalation"] is False, name
        assert sc["capabilities"]["drop"] == ["ALL"], name
        assert not sc["capabilities"].get("add"), name
        volumes = {v["name"]: v for v in spec["volumes"]}
        tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
        assert len(tmp) == 1 and "emptyDir" in volumes[tmp[0]["name"]], f"{name}: /tmp emptyDir"
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]), name
        assert "memory" in resources["limits"], name


def test_stores_run_non_root_too(overlay: Rendered) -> None:
    for workload in overlay.kind("StatefulSet"):
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True
        sc = only_container(workload)["securityContext"]
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert sc["allowPrivilegeEscalation"] is False


def test_images_are_the_services_own_and_pinned_in_prod(overlay: Rendered) -> None:
    for name, workload in app_workloads(overlay).items():
        image: str = only_container(workload)["image"]
        repo, _, tag = image.rpartition(":")
        assert repo.endswith(f"momentum/{name}"), image
        assert tag and tag != "latest", f"{overlay.overlay}: {image} needs a version tag"
        if overlay.overlay == "prod":
            assert "/" in repo.removesuffix(f"momentum/{name}"), (
                f"prod pulls from a registry: {image}"
            )


def test_dev_runs_mongodb_and_redis_in_cluster_with_persistent_volumes() -> None:
    rendered = Rendered("dev", render(K8S / "overlays" / "dev"))
    sets = {s["metadata"]["name"]: s for s in rendered.kind("StatefulSet")}
    assert set(sets) == set(STORES)
    assert only_container(sets["mongodb"])["image"] == "mongo:7"
    assert only_container(sets["redis"])["image"] == "redis:7"
    redis_args = " ".join(only_container(sets["redis"])["args"])
    assert "--appendonly yes" in redis_args, "Redis keeps the event stream: AOF must be on"
    for store in sets.values():
        assert store["spec"]["volumeClaimTemplates"], store["metadata"]["name"]
        mounts = {m["name"] for m in only_container(store)["volumeMounts"]}
        assert "data" in mounts


def test_prod_uses_external_stores_from_a_secret() -> None:
    rendered = Rendered("prod", render(K8S / "overlays" / "prod"))
    assert rendered.kind("StatefulSet") == []
    images = [c["image"] for w in rendered.workloads() for c in pod_spec(w)["containers"]]
    assert not [i for i in images if i.startswith(("mongo", "redis"))]
    for name, workload in app_workloads(rendered).items():
        env = {e["name"]: e for e in only_container(workload).get("env", [])}
        for var in ("MONGODB_URL", "REDIS_URL"):
            ref = env[var]["valueFrom"]["secretKeyRef"]
            assert ref["name"] == "momentum-stores", f"{name}: {var} from the stores Secret"


def test_prod_has_more_replicas_than_dev() -> None:
    dev = Rendered("dev", render(K8S / "overlays" / "dev"))
    prod = Rendered("prod", render(K8S / "overlays" / "prod"))
    for hpa in prod.kind("HorizontalPodAutoscaler"):
        name = hpa["metadata"]["name"]
        dev_hpa = dev.get("HorizontalPodAutoscaler", name)
        assert hpa["spec"]["minReplicas"] >= 2
        assert hpa["spec"]["minReplicas"] > dev_hpa["spec"]["minReplicas"], name
        assert hpa["spec"]["maxReplicas"] > dev_hpa["spec"]["maxReplicas"], name
    prod_auth = prod.get("Deployment", "auth-service")["spec"]["replicas"]
    assert prod_auth >= 2
    assert prod_auth > dev.get("Deployment", "auth-service")["spec"]["replicas"]


def test_dev_auth_generates_its_key_so_runs_one_replica() -> None:
    """Without a shared key, two auth pods would sign with different keys."""
    dev = Rendered("dev", render(K8S / "overlays" / "dev"))
    assert dev.get("Deployment", "auth-service")["spec"]["replicas"] == 1


def test_analytics_consumer_name_is_the_pod_name(overlay: Rendered) -> None:
    container = only_container(overlay.get("Deployment", "analytics-service"))
    from_pod_name = [
        e["name"]
        for e in container.get("env", [])
        if e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name"
    ]
    assert len(from_pod_name) == 1, "one env var carries the pod name"
    assert "CONSUMER" in from_pod_name[0]
    # One consumer name per pod: one process per pod.
    config = overlay.get("ConfigMap", config_map_name(overlay, container, "momentum-analytics"))
    assert config["data"].get("UVICORN_WORKERS") == "1"


def config_map_name(overlay: Rendered, container: Manifest, prefix: str) -> str:
    names: list[str] = [
        ref["configMapRef"]["name"]
        for ref in container.get("envFrom", [])
        if "configMapRef" in ref and ref["configMapRef"]["name"].startswith(prefix)
    ]
    assert len(names) == 1, f"{overlay.overlay}: one ConfigMap {prefix}*: {names}"
    return names[0]


# ---- scaling, disruption, exposure -----------------------------------------------------


def test_hpa_for_gateway_tracking_and_analytics_only(overlay: Rendered) -> None:
    deployments = app_workloads(overlay)
    hpas = {h["metadata"]["name"]: h for h in overlay.kind("HorizontalPodAutoscaler")}
    assert set(hpas) == {s.name for s in SERVICES.values() if s.hpa}
    for name, hpa in hpas.items():
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", name)
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        assert hpa["spec"]["metrics"], name
        # The HPA owns the replica count; a fixed one would fight it on every apply.
        assert "replicas" not in deployments[name]["spec"], name


def test_every_service_has_a_pdb_that_selects_its_pods(overlay: Rendered) -> None:
    pdbs = overlay.kind("PodDisruptionBudget")
    for name, workload in app_workloads(overlay).items():
        matching = [p for p in pdbs if selects(p["spec"]["selector"], labels_of(workload))]
        assert len(matching) == 1, f"{overlay.overlay}: {name} needs exactly one PDB"
        spec = matching[0]["spec"]
        # maxUnavailable keeps a one-replica dev Deployment drainable.
        assert spec.get("maxUnavailable") == 1 or spec.get("minAvailable"), name


def test_each_service_has_a_cluster_ip_service_on_its_pods(overlay: Rendered) -> None:
    services = {s["metadata"]["name"]: s for s in overlay.kind("Service")}
    for name, workload in app_workloads(overlay).items():
        service = services[name]
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP", name
        assert selects({"matchLabels": service["spec"]["selector"]}, labels_of(workload))
        port_names = {p["name"] for p in only_container(workload)["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    exposed = [
        s["metadata"]["name"]
        for s in services.values()
        if s["spec"].get("type") in {"NodePort", "LoadBalancer"}
    ]
    assert exposed == [], "the Ingress is the only way in"


def test_only_the_gateway_has_an_ingress(overlay: Rendered) -> None:
    ingresses = overlay.kind("Ingress")
    assert len(ingresses) == 1
    backends = [
        path["backend"]["service"]["name"]
        for rule in ingresses[0]["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    assert backends and set(backends) == {"gateway"}
    assert "defaultBackend" not in ingresses[0]["spec"]


# ---- network policies ------------------------------------------------------------------


def allowed_sources(rendered: Rendered, pod_labels: dict[str, str]) -> set[str]:
    """Who may open a connection to a pod with these labels, by the rendered policies.

    A peer is a pod name of this namespace, ``namespace:<k>=<v>`` for a namespace
    selector, ``ip:<cidr>``, or ``anywhere``. A pod no policy selects is reachable from
    anywhere.
    """
    pods = {w["metadata"]["name"]: labels_of(w) for w in rendered.workloads()}
    policies = [
        p
        for p in rendered.kind("NetworkPolicy")
        if "Ingress" in p["spec"].get("policyTypes", ["Ingress"])
        and selects(p["spec"]["podSelector"], pod_labels)
    ]
    if not policies:
        return {"anywhere"}
    sources: set[str] = set()
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            peers = rule.get("from")
            if not peers:
                sources.add("anywhere")
                continue
            for peer in peers:
                if "ipBlock" in peer:
                    sources.add(f"ip:{peer['ipBlock']['cidr']}")
                elif "namespaceSelector" in peer:
                    wanted = peer["namespaceSelector"].get("matchLabels") or {}
                    sources.add(
                        "namespace:" + ",".join(f"{k}={v}" for k, v in sorted(wanted.items()))
                        if wanted
                        else "anywhere"
                    )
                else:
                    sources.update(n for n, lb in pods.items() if selects(peer["podSelector"], lb))
    return sources


def test_network_policies_deny_by_default(overlay: Rendered) -> None:
    default_deny = [
        p
        for p in overlay.kind("NetworkPolicy")
        if p["spec"]["podSelector"] == {} and not p["spec"].get("ingress")
    ]
    assert default_deny, "a default-deny ingress policy for the namespace"


def test_only_the_gateway_is_reachable_from_outside(overlay: Rendered) -> None:
    apps = {n: labels_of(w) for n, w in app_workloads(overlay).items()}
    expected = {
        "gateway": {INGRESS_CONTROLLER},
        # The gateway routes to it; tracking and analytics fetch its JWKS.
        "auth-service": {"gateway", "tracking-service", "analytics-service"},
        "tracking-service": {"gateway"},
        "analytics-service": {"gateway"},
    }
    actual = {name: allowed_sources(overlay, labels) for name, labels in apps.items()}
    assert actual == expected


def test_stores_are_reachable_only_from_the_services() -> None:
    rendered = Rendered("dev", render(K8S / "overlays" / "dev"))
    for store in STORES:
        labels = labels_of(rendered.get("StatefulSet", store))
        assert allowed_sources(rendered, labels) == set(SERVICES), store


# ---- configuration and secrets ---------------------------------------------------------


def documented_secrets() -> str:
    return (DEPLOY / "README.md").read_text()


def test_config_and_secret_references_resolve(overlay: Rendered) -> None:
    """Every ConfigMap a pod reads is rendered; every Secret is rendered (dev) or is
    documented as a ``kubectl create secret`` with that key (prod)."""
    config_maps = {c["metadata"]["name"]: c for c in overlay.kind("ConfigMap")}
    secrets = {s["metadata"]["name"]: s for s in overlay.kind("Secret")}
    readme = documented_secrets()
    problems: list[str] = []

    def secret_key(name: str, key: str, where: str) -> None:
        if name in secrets:
            if key not in secrets[name].get("data", {}):
                problems.append(f"{where}: Secret {name} has no key {key}")
        elif not re.search(
            rf"kubectl (?:-n \S+ )?create secret generic {re.escape(name)}\b"
            rf"[^`]*--from-\w+={re.escape(key)}\b",
            readme,
        ):
            problems.append(
                f"{where}: Secret {name}/{key} is neither rendered nor in deploy/README.md"
            )

    for workload in overlay.workloads():
        where = f"{overlay.overlay}/{workload['metadata']['name']}"
        spec = pod_spec(workload)
        for container in spec["containers"]:
            for ref in container.get("envFrom", []):
                assert "secretRef" not in ref, f"{where}: name secret env vars one by one"
                name = ref["configMapRef"]["name"]
                if name not in config_maps:
                    problems.append(f"{where}: ConfigMap {name} not rendered")
            for env in container.get("env", []):
                source = env.get("valueFrom", {})
                if "secretKeyRef" in source:
                    secret_key(source["secretKeyRef"]["name"], source["secretKeyRef"]["key"], where)
                if (
                    "configMapKeyRef" in source
                    and source["configMapKeyRef"]["name"] not in config_maps
                ):
                    problems.append(f"{where}: ConfigMap {source['configMapKeyRef']['name']}")
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                for item in volume["secret"].get("items", []) or [{"key": "?"}]:
                    secret_key(volume["secret"]["secretName"], item["key"], where)
    assert problems == []


def test_no_secret_value_is_committed_for_prod() -> None:
    rendered = Rendered("prod", render(K8S / "overlays" / "prod"))
    assert rendered.kind("Secret") == [], "prod Secrets are created by hand, not rendered"
    for config in rendered.kind("ConfigMap"):
        for key, value in config.get("data", {}).items():
            assert "PRIVATE KEY" not in value and not key.endswith("_PEM"), key

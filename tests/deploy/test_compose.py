"""docker-compose.yml: valid by the Compose specification, and wired as designed.

The Compose specification's JSON schema ships inside check-jsonschema
(``check_jsonschema/builtin_schemas/vendor/compose-spec.json``, vendored from
SchemaStore / compose-spec), so this runs offline; no Docker engine is needed.
"""

import copy
import os
import subprocess
import sys
from importlib.resources import files
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import orjson
import pytest
from deploy_support import COMPOSE_FILE, REPO, SERVICES, Manifest, load_compose

STORES = {"mongo": "mongo:7", "redis": "redis:7"}


def compose_schema() -> Manifest:
    text = (
        files("check_jsonschema") / "builtin_schemas" / "vendor" / "compose-spec.json"
    ).read_bytes()
    schema: Manifest = orjson.loads(text)
    return schema


def schema_errors(document: Manifest) -> list[str]:
    schema = compose_schema()
    validator_cls: Any = jsonschema.validators.validator_for(schema)
    validator = validator_cls(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def test_compose_file_validates_against_the_compose_specification() -> None:
    assert schema_errors(load_compose(raw=True)) == []
    assert schema_errors(load_compose()) == []


def test_the_schema_check_is_live() -> None:
    """A misspelled key in a real service fails the schema (so the check is not a no-op)."""
    document = copy.deepcopy(load_compose())
    document["services"]["gateway"]["healtcheck"] = document["services"]["gateway"].pop(
        "healthcheck"
    )
    assert schema_errors(document) != []


def test_the_stack_is_the_stores_and_the_four_services() -> None:
    services = load_compose()["services"]
    assert set(services) == set(STORES) | set(SERVICES)
    for store, image in STORES.items():
        assert services[store]["image"] == image


def test_only_the_gateway_publishes_a_port() -> None:
    services = load_compose()["services"]
    published = {name for name, spec in services.items() if spec.get("ports")}
    assert published == {"gateway"}, f"internal services must not publish ports: {published}"
    ports = services["gateway"]["ports"]
    assert len(ports) == 1
    target = ports[0]["target"] if isinstance(ports[0], dict) else str(ports[0]).split(":")[-1]
    assert str(target) == "8000"
    for name, spec in services.items():
        assert spec.get("network_mode") != "host", f"{name} would bypass the port mapping"


def test_stores_persist_and_redis_keeps_an_append_only_file() -> None:
    compose = load_compose()
    services = compose["services"]
    volumes = set(compose.get("volumes", {}))
    for store, target in (("mongo", "/data/db"), ("redis", "/data")):
        mounts = [str(v).split(":") for v in services[store].get("volumes", [])]
        assert any(m[0] in volumes and m[1] == target for m in mounts), store
    command = services["redis"]["command"]
    command = " ".join(command) if isinstance(command, list) else command
    assert "--appendonly yes" in command


def test_every_service_has_a_healthcheck_and_waits_for_healthy_dependencies() -> None:
    services = load_compose()["services"]
    for name, spec in services.items():
        test = spec.get("healthcheck", {}).get("test")
        assert test and not spec["healthcheck"].get("disable"), f"{name}: healthcheck"
        if name in SERVICES:
            # The gateway's own liveness: its /health is down whenever a service is.
            path = "/livez" if name == "gateway" else "/health"
            assert f"8000{path}'" in " ".join(test), name
    for name in SERVICES:
        depends = services[name]["depends_on"]
        assert isinstance(depends, dict), f"{name}: depends_on with conditions"
        assert all(d["condition"] == "service_healthy" for d in depends.values()), name
        assert {"redis"} <= set(depends), name
    for name in ("auth-service", "tracking-service", "analytics-service"):
        assert {"mongo", "redis"} <= set(services[name]["depends_on"]), name
    assert {"auth-service", "tracking-service", "analytics-service"} <= set(
        services["gateway"]["depends_on"]
    )


def test_services_build_their_own_image_and_run_locked_down() -> None:
    services = load_compose()["services"]
    for name in SERVICES:
        spec = services[name]
        dockerfile = REPO / spec["build"]["context"] / spec["build"]["dockerfile"]
        assert dockerfile == REPO / "deploy" / "docker" / f"{name}.Dockerfile"
        assert dockerfile.is_file()
        assert spec["image"].startswith(f"momentum/{name}:")
        assert spec["read_only"] is True, name
        assert spec["cap_drop"] == ["ALL"], name
        assert "/tmp" in spec["tmpfs"], name


def test_the_signing_key_is_a_secret_file_outside_git_and_the_image() -> None:
    compose = load_compose()
    source = compose["secrets"]["auth_signing_key"]["file"]
    assert "auth_signing_key" in compose["services"]["auth-service"]["secrets"]
    for name in set(SERVICES) - {"auth-service"}:
        assert not compose["services"][name].get("secrets"), name
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", source], cwd=REPO, check=False
    ).returncode
    assert ignored == 0, f"{source} must be git-ignored"
    text = COMPOSE_FILE.read_text()
    assert "PRIVATE KEY" not in text


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_jwks_and_upstreams_point_at_compose_service_names(name: str) -> None:
    services = load_compose()["services"]
    env = services[name]["environment"]
    urls = [str(v) for k, v in env.items() if k.endswith(("_URL", "JWKS_URL"))]
    hosts = {u.split("://", 1)[1].split("/", 1)[0].split(":", 1)[0] for u in urls}
    assert hosts <= set(services), f"{name}: URLs name compose services: {hosts}"


@pytest.mark.parametrize("service", SERVICES)
def test_each_container_runs_one_worker_so_a_bad_setting_exits_it(service: str) -> None:
    environment = load_compose()["services"][service]["environment"]
    assert environment["UVICORN_WORKERS"] == "1"


def test_a_service_with_a_bad_setting_exits_non_zero_with_one_worker() -> None:
    env = {**os.environ, "MOMENTUM_TRACKING_RELAY_BATCH_SIZE": "0", "UVICORN_WORKERS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "uvicorn", "--factory", "momentum_tracking.main:create_app"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "relay_batch_size" in done.stderr

"""The env vars the manifests and compose set are exactly settings the services read.

The valid names come from the services' pydantic-settings classes (``env_prefix`` + field
name, or a field's alias choices) and from uvicorn's own CLI (``UVICORN_<OPTION>``). Any
other name fails: a misspelled setting would otherwise be ignored silently
(``extra="ignore"``) and the service would run on its default. The values are then loaded
through the same classes, in production mode, so a value a service refuses fails too.
"""

import os
from collections.abc import Iterator
from typing import Any

import click
import pytest
from deploy_support import (
    K8S,
    SERVICES,
    Manifest,
    Rendered,
    load_compose,
    only_container,
    render,
    settings_class,
    settings_env_names,
    uvicorn_env_names,
)
from momentum_libs.settings import ServiceSettings, VerifyingServiceSettings
from pydantic import ValidationError

# What a value from a Secret, or from the downward API, stands for when loading settings.
SECRET_PLACEHOLDERS = {
    "MONGODB_URL": "mongodb://mongo.example:27017",
    "REDIS_URL": "redis://redis.example:6379/0",
}
FROM_POD = "pod-name-0"

# Settings without which a service refuses production or runs on a loopback default.
REQUIRED_IN_PRODUCTION = {
    "gateway": {
        "MOMENTUM_GATEWAY_AUTH_URL",
        "MOMENTUM_GATEWAY_TRACKING_URL",
        "MOMENTUM_GATEWAY_ANALYTICS_URL",
    },
    "auth-service": {"MOMENTUM_AUTH_SIGNING_KEY_FILE"},
    "tracking-service": set(),
    "analytics-service": set(),
}
REQUIRED_BY_ALL = {"MONGODB_URL", "REDIS_URL", "MOMENTUM_ENVIRONMENT"}
REQUIRED_BY_VERIFIERS = {"MOMENTUM_JWKS_URL"}


def valid_names(service: str) -> set[str]:
    return settings_env_names(settings_class(SERVICES[service])) | uvicorn_env_names()


def required_names(service: str, env: dict[str, str]) -> set[str]:
    names = set(REQUIRED_BY_ALL)
    if env.get("MOMENTUM_ENVIRONMENT") == "production":
        names |= REQUIRED_IN_PRODUCTION[service]
    if SERVICES[service].verifies_tokens:
        names |= REQUIRED_BY_VERIFIERS
    return names


# ---- what each deployment sets -------------------------------------------------------


def k8s_env(rendered: Rendered, service: str) -> dict[str, str]:
    """Env var → value (secrets and pod fields as placeholders) of a service's container."""
    config_maps = {c["metadata"]["name"]: c.get("data", {}) for c in rendered.kind("ConfigMap")}
    container = only_container(rendered.get("Deployment", service))
    env: dict[str, str] = {}
    for ref in container.get("envFrom", []):
        env.update(config_maps[ref["configMapRef"]["name"]])
    for item in container.get("env", []):
        source: Manifest = item.get("valueFrom", {})
        if "value" in item:
            env[item["name"]] = str(item["value"])
        elif "secretKeyRef" in source:
            env[item["name"]] = SECRET_PLACEHOLDERS.get(item["name"], "from-a-secret")
        elif "fieldRef" in source:
            env[item["name"]] = FROM_POD
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            env[item["name"]] = config_maps[ref["name"]][ref["key"]]
        else:
            pytest.fail(f"{service}: {item['name']} has a value source this test does not know")
    return env


def compose_env(service: str) -> dict[str, str]:
    environment: Any = load_compose()["services"][service].get("environment", {})
    assert isinstance(environment, dict), f"{service}: environment as a mapping"
    return {str(k): "" if v is None else str(v) for k, v in environment.items()}


def deployments() -> Iterator[tuple[str, str, dict[str, str]]]:
    """(where, service, env) for every service in every overlay and in compose."""
    for overlay in ("dev", "prod"):
        rendered = Rendered(overlay, render(K8S / "overlays" / overlay))
        for service in SERVICES:
            yield f"k8s/{overlay}", service, k8s_env(rendered, service)
    for service in SERVICES:
        yield "compose", service, compose_env(service)


ALL = [pytest.param(where, service, id=f"{where}-{service}") for where, service, _ in deployments()]


def env_of(where: str, service: str) -> dict[str, str]:
    return next(env for w, s, env in deployments() if (w, s) == (where, service))


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No setting of this machine's environment leaks into the settings being checked."""
    for name in list(os.environ):
        if name.startswith(("MOMENTUM_", "UVICORN_")) or name in {
            "MONGODB_URL",
            "REDIS_URL",
            "WEB_CONCURRENCY",
        }:
            monkeypatch.delenv(name)
    return monkeypatch


# ---- the checks ----------------------------------------------------------------------


@pytest.mark.parametrize(("where", "service"), ALL)
def test_every_env_var_set_is_a_setting_the_service_reads(where: str, service: str) -> None:
    unknown = sorted(set(env_of(where, service)) - valid_names(service))
    assert unknown == [], (
        f"{where}: {service} is given env vars no setting of "
        f"{SERVICES[service].settings} (nor uvicorn) reads: {unknown}"
    )


@pytest.mark.parametrize(("where", "service"), ALL)
def test_the_settings_production_needs_are_set(where: str, service: str) -> None:
    env = env_of(where, service)
    missing = sorted(required_names(service, env) - set(env))
    assert missing == [], f"{where}: {service} lacks {missing}"


@pytest.mark.parametrize(("where", "service"), ALL)
def test_the_values_load_through_the_settings_class(
    where: str, service: str, clean_environ: pytest.MonkeyPatch
) -> None:
    env = env_of(where, service)
    for name, value in env.items():
        clean_environ.setenv(name, value)
    cls = settings_class(SERVICES[service])
    try:
        settings: Any = cls()
    except ValidationError as exc:
        pytest.fail(f"{where}: {service} refuses its configuration: {exc}")
    assert isinstance(settings, ServiceSettings)
    if where != "k8s/dev":  # dev runs in development mode with in-cluster stores
        assert settings.is_production, f"{where}: {service} must run in production mode"
    assert "127.0.0.1" not in settings.mongodb_url and "127.0.0.1" not in settings.redis_url
    if isinstance(settings, VerifyingServiceSettings):
        assert "auth-service" in settings.jwks_url, settings.jwks_url
    # uvicorn reads UVICORN_* itself: parse them as its CLI would.
    from uvicorn.main import main

    try:
        main.make_context("uvicorn", ["momentum:app"])
    except click.BadParameter as exc:
        pytest.fail(f"{where}: {service}: uvicorn refuses {exc}")


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_valid_names_come_from_the_settings_classes(service: str) -> None:
    """The source of truth is live: each class yields its prefixed and shared names."""
    names = settings_env_names(settings_class(SERVICES[service]))
    prefix = str(settings_class(SERVICES[service]).model_config.get("env_prefix"))
    assert prefix == f"MOMENTUM_{SERVICES[service].package.upper()}_"
    assert {"MONGODB_URL", "REDIS_URL", "MOMENTUM_ENVIRONMENT"} <= names
    assert any(n.startswith(prefix) for n in names)
    assert f"{prefix}NO_SUCH_SETTING" not in names


def test_the_auth_key_file_is_a_mounted_secret() -> None:
    """MOMENTUM_AUTH_SIGNING_KEY_FILE points into a Secret (k8s) or compose secret."""
    prod = Rendered("prod", render(K8S / "overlays" / "prod"))
    path = k8s_env(prod, "auth-service")["MOMENTUM_AUTH_SIGNING_KEY_FILE"]
    workload = prod.get("Deployment", "auth-service")
    volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
    mounts = [
        m
        for m in only_container(workload)["volumeMounts"]
        if path.startswith(m["mountPath"].rstrip("/") + "/")
    ]
    assert len(mounts) == 1 and "secret" in volumes[mounts[0]["name"]], path
    assert mounts[0].get("readOnly") is True
    compose = load_compose()
    auth = compose["services"]["auth-service"]
    key_path = compose_env("auth-service")["MOMENTUM_AUTH_SIGNING_KEY_FILE"]
    secret_names = [s if isinstance(s, str) else s["source"] for s in auth["secrets"]]
    assert key_path in {f"/run/secrets/{name}" for name in secret_names}

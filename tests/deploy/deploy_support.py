"""Offline validation of deploy/ and docker-compose.yml: what the test modules share.

Nothing here needs a Docker engine or a cluster: kustomize renders with the machine's
``kubectl``, schemas ship inside packages (kubernetes-validate, check-jsonschema), and the
services' settings classes are imported to learn which env vars they read.
"""

import importlib
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = ("dev", "prod")
COMPOSE_FILE = REPO / "docker-compose.yml"

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Service:
    """One of Momentum's four services, under every name the deployment uses for it."""

    name: str  # folder, image, compose service, k8s Deployment/Service/container
    package: str  # distribution: momentum-<package>
    settings: str  # module:Class of its pydantic-settings class
    hpa: bool
    verifies_tokens: bool

    @property
    def module(self) -> str:
        return f"momentum_{self.package}"

    @property
    def distribution(self) -> str:
        return f"momentum-{self.package}"


SERVICES: dict[str, Service] = {
    s.name: s
    for s in (
        Service("gateway", "gateway", "momentum_gateway.settings:GatewaySettings", True, True),
        Service("auth-service", "auth", "momentum_auth.settings:AuthSettings", False, False),
        Service(
            "tracking-service",
            "tracking",
            "momentum_tracking.settings:TrackingSettings",
            True,
            True,
        ),
        Service(
            "analytics-service",
            "analytics",
            "momentum_analytics.settings:AnalyticsSettings",
            True,
            True,
        ),
    )
}


def kubectl() -> str:
    """The kubectl binary; a missing one is a failure, never a skip."""
    found = shutil.which("kubectl") or (
        "/usr/bin/kubectl" if Path("/usr/bin/kubectl").exists() else None
    )
    if found is None:
        pytest.fail("kubectl is not installed: the kustomize overlays cannot be rendered")
    return found


@cache
def _render(path: str) -> tuple[Manifest, ...]:
    result = subprocess.run(
        [kubectl(), "kustomize", path], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, f"kubectl kustomize {path} failed:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def render(path: Path) -> list[Manifest]:
    """``kubectl kustomize PATH`` as a list of manifests (cached; copy before mutating)."""
    return list(_render(str(path)))


@dataclass
class Rendered:
    overlay: str
    manifests: list[Manifest]
    by_kind: dict[str, list[Manifest]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for manifest in self.manifests:
            self.by_kind.setdefault(manifest["kind"], []).append(manifest)

    def kind(self, kind: str) -> list[Manifest]:
        return self.by_kind.get(kind, [])

    def get(self, kind: str, name: str) -> Manifest:
        found = [m for m in self.kind(kind) if m["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.overlay}: expected one {kind} {name}, found {len(found)}"
        return found[0]

    def workloads(self) -> list[Manifest]:
        return self.kind("Deployment") + self.kind("StatefulSet")


def pod_spec(workload: Manifest) -> Manifest:
    spec: Manifest = workload["spec"]["template"]["spec"]
    return spec


def only_container(workload: Manifest) -> Manifest:
    containers: list[Manifest] = pod_spec(workload)["containers"]
    assert len(containers) == 1, f"{workload['metadata']['name']}: one container expected"
    return containers[0]


_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<default>[^}]*))?\}")


def interpolate(value: Any) -> Any:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``$$``, as with no variable set."""
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            if match[0] == "$$":
                return "$"
            assert "?" not in (match["op"] or ""), f"required variable {match['name']}"
            return match["default"] or ""

        return _VARIABLE.sub(substitute, value)
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    return value


def load_compose(*, raw: bool = False) -> Manifest:
    """docker-compose.yml as compose sees it with no variables set (``raw``: as written)."""
    data: Manifest = yaml.safe_load(COMPOSE_FILE.read_text())
    return data if raw else dict(interpolate(data))


# ---- which env vars each service reads -----------------------------------------------


def settings_class(service: Service) -> type[BaseSettings]:
    module, _, name = service.settings.partition(":")
    cls: type[BaseSettings] = getattr(importlib.import_module(module), name)
    return cls


def settings_env_names(cls: type[BaseSettings]) -> set[str]:
    """Every env var name a pydantic-settings class reads, upper-cased.

    A field with a validation alias is read under its alias choices (the shared, unprefixed
    settings); any other under ``env_prefix + field name``.
    """
    prefix = str(cls.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for name, info in cls.model_fields.items():
        alias = info.validation_alias
        choices = getattr(alias, "choices", None)
        if choices:
            names.update(c.upper() for c in choices if isinstance(c, str))
        elif isinstance(alias, str):
            names.add(alias.upper())
        else:
            names.add((prefix + name).upper())
    return names


def uvicorn_env_names() -> set[str]:
    """uvicorn's own options, which its CLI reads as UVICORN_<OPTION> (and WEB_CONCURRENCY)."""
    from uvicorn.main import main

    names = {f"UVICORN_{p.name.upper()}" for p in main.params if p.name and p.name != "app"}
    return names | {"WEB_CONCURRENCY"}

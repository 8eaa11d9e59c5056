"""Print the README's settings tables from the services' settings classes (the only source)."""

import importlib
from typing import Any

from momentum_libs.settings import VerifyingServiceSettings
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

SETTINGS_CLASSES = {
    "gateway": "momentum_gateway.settings:GatewaySettings",
    "auth-service": "momentum_auth.settings:AuthSettings",
    "tracking-service": "momentum_tracking.settings:TrackingSettings",
    "analytics-service": "momentum_analytics.settings:AnalyticsSettings",
}


def load(path: str) -> type[BaseSettings]:
    module, _, name = path.partition(":")
    cls: type[BaseSettings] = getattr(importlib.import_module(module), name)
    return cls


def env_name(cls: type[BaseSettings], name: str, field: FieldInfo) -> str:
    alias = field.validation_alias
    choices = getattr(alias, "choices", None)
    if choices:
        return str(choices[0])
    if isinstance(alias, str):
        return alias
    return (str(cls.model_config.get("env_prefix", "")) + name).upper()


def env_settings(cls: type[BaseSettings]) -> dict[str, tuple[Any, str]]:
    """Env var name → (default, description) for every field of a settings class."""
    return {
        env_name(cls, name, field): (
            field.get_default(call_default_factory=False),
            field.description or "",
        )
        for name, field in cls.model_fields.items()
    }


def table(rows: dict[str, tuple[Any, str]]) -> str:
    lines = ["| env var | default | meaning |", "|---|---|---|"]
    for env, (default, description) in sorted(rows.items()):
        shown = "" if default is None else f"`{default}`"
        lines.append(f"| `{env}` | {shown} | {description} |")
    return "\n".join(lines)


def render() -> str:
    services = {service: env_settings(load(path)) for service, path in SETTINGS_CLASSES.items()}
    # Shared: the base's settings whose env var is the same in every service (a field
    # without a shared alias takes each service's prefix, and is listed under each).
    shared = {
        k: v
        for k, v in env_settings(VerifyingServiceSettings).items()
        if any(k in envs for envs in services.values())
    }
    parts = [
        "#### Shared by every service (the two JWKS ones: every service but auth)\n",
        table(shared),
    ]
    for service, envs in services.items():
        own = {k: v for k, v in envs.items() if k not in shared}
        parts += [f"\n#### {service}\n", table(own)]
    return "\n".join(parts)


def main() -> None:
    print(render())


if __name__ == "__main__":
    main()

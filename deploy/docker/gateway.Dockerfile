# syntax=docker/dockerfile:1
# The gateway image: momentum-gateway and momentum-libs, nothing else of the workspace.
# Build from the repository root (the context needs uv.lock and the workspace manifests):
#   docker build -f deploy/docker/gateway.Dockerfile -t momentum/gateway .
# The four service Dockerfiles are the same but for the service's names
# (tests/deploy/test_dockerfiles.py keeps them so).

FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

# ---- builder: a virtualenv holding only this service, libs and their locked dependencies
FROM python:3.11-slim AS builder
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# 1. Third-party dependencies, from the lock file. Only manifests are copied, so this
#    layer is rebuilt when a lock or a manifest changes, never for another service's code.
COPY uv.lock pyproject.toml ./
COPY libs/pyproject.toml libs/
COPY gateway/pyproject.toml gateway/
COPY auth-service/pyproject.toml auth-service/
COPY tracking-service/pyproject.toml tracking-service/
COPY analytics-service/pyproject.toml analytics-service/
COPY ops/pyproject.toml ops/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package momentum-gateway
# 2. libs and this service's own code, installed as wheels (not editable): the runtime
#    image needs no source tree.
COPY libs/ libs/
COPY gateway/ gateway/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package momentum-gateway

# ---- runtime: python:3.11-slim, the virtualenv, a non-root user; no keys, no sources
FROM python:3.11-slim AS runtime
RUN groupadd --system --gid 10001 momentum \
    && useradd --system --uid 10001 --gid momentum --home-dir /nonexistent \
       --no-create-home --shell /usr/sbin/nologin momentum \
    && mkdir /data \
    && chown momentum:momentum /data
# Owned by root: the service cannot change its own code.
COPY --from=builder /app/.venv /app/.venv
# Server knobs are read by uvicorn itself (UVICORN_<OPTION>); the service's own settings
# are MOMENTUM_* / MONGODB_URL / REDIS_URL, supplied at run time (compose, Kubernetes).
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MOMENTUM_DATA_DIR=/data \
    UVICORN_HOST=0.0.0.0 \
    UVICORN_PORT=8000 \
    UVICORN_WORKERS=1 \
    UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN=20 \
    UVICORN_ACCESS_LOG=false
WORKDIR /app
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/health' % os.environ.get('UVICORN_PORT', '8000'), timeout=2)"]
CMD ["uvicorn", "--factory", "momentum_gateway.main:create_app", "--no-server-header"]

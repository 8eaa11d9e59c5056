# Everything a fresh machine needs is installed by these targets: only python3 and make are assumed.
SHELL := /bin/bash
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)
RUN := $(UV) run --frozen --all-packages

.PHONY: install up test lint openapi fmt bench mutation test-libs test-gateway test-auth test-tracking test-analytics test-e2e clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv>=0.5,<1"

$(VENV)/.installed: $(UV) uv.lock pyproject.toml */pyproject.toml
	$(UV) sync --frozen --all-packages --all-extras
	touch $@

install: $(VENV)/.installed

# The browser test renders /docs in Debian's chromium (playwright never downloads a browser).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
		echo "The browser test needs Debian's chromium: run 'sudo apt-get install -y chromium'" >&2; \
		exit 1; \
	fi

# The cross-service metrics test scrapes the stack with Debian's Prometheus (never skipped).
PROMETHEUS := /usr/bin/prometheus
$(PROMETHEUS):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus; \
	else \
		echo "The metrics test needs Debian's prometheus: run 'sudo apt-get install -y prometheus'" >&2; \
		exit 1; \
	fi

up: install
	$(RUN) momentum-stack up

test: install $(CHROMIUM) $(PROMETHEUS)
	$(RUN) pytest

test-libs: install
	$(RUN) pytest libs/tests
test-gateway: install
	$(RUN) pytest gateway/tests
test-auth: install
	$(RUN) pytest auth-service/tests
test-tracking: install
	$(RUN) pytest tracking-service/tests
test-analytics: install
	$(RUN) pytest analytics-service/tests
test-e2e: install $(CHROMIUM) $(PROMETHEUS)
	$(RUN) pytest tests

lint: install
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy libs/src gateway/src auth-service/src tracking-service/src analytics-service/src

fmt: install
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

# Regenerate docs/openapi.json (the contract a test holds the gateway to) from the code.
openapi: install
	$(RUN) python scripts/export_openapi.py

bench: install
	$(RUN) python -m bench

# Mutation testing of the riskiest modules (long: not part of `make test`). Narrow it with
# e.g. MUTATION_ARGS="--module streaks --jobs 2"; see scripts/mutation.py.
mutation: install
	$(RUN) python scripts/mutation.py $(MUTATION_ARGS)

clean:
	rm -rf $(VENV) $(TOOLS)

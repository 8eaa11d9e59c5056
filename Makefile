# Everything a fresh machine needs is installed by these targets: only python3 and make are assumed.
SHELL := /bin/bash
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)
RUN := $(UV) run --frozen --all-packages

.PHONY: install up test lint openapi fmt bench mutation test-libs test-gateway test-auth test-tracking test-analytics test-ops test-e2e clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv>=0.5,<1"

$(VENV)/.installed: $(UV) uv.lock pyproject.toml */pyproject.toml
	$(UV) sync --frozen --all-packages --all-extras
	touch $@

install: $(VENV)/.installed

# System packages some tests need, from Debian: the browser test renders /docs in chromium
# (playwright never downloads a browser); the monitoring tests run Prometheus (scraping the
# test stack) and promtool.
# Installed when missing and we can (root with apt-get); else one line says what to install.
CHROMIUM := /usr/bin/chromium
PROMETHEUS := /usr/bin/prometheus
SYSTEM_TOOLS := $(CHROMIUM) $(PROMETHEUS)
$(CHROMIUM): DEBIAN_PACKAGE := chromium
$(PROMETHEUS): DEBIAN_PACKAGE := prometheus
$(SYSTEM_TOOLS):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBIAN_PACKAGE); \
	else \
		echo "The tests need Debian's $(DEBIAN_PACKAGE): run 'sudo apt-get install -y $(DEBIAN_PACKAGE)'" >&2; \
		exit 1; \
	fi

up: install
	$(RUN) momentum-stack up

# Three pytest workers, each with its own stores and session stack, one test file per
# worker at a time (module-scoped stacks are started once). Most of the suite's time is
# spent waiting on other processes, so on CI's 2 cores 3 workers beat 2. Files are handed
# out in collection order (testpaths puts the long cross-service files first): xdist's
# default, most tests first, left the 2-test schemathesis file to run alone at the end.
PARALLEL := -n 3 --dist loadfile --no-loadscope-reorder

test: install $(SYSTEM_TOOLS)
	$(RUN) pytest $(PARALLEL)

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
test-ops: install
	$(RUN) pytest ops/tests
test-e2e: install $(SYSTEM_TOOLS)
	$(RUN) pytest $(PARALLEL) tests

lint: install
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy libs/src gateway/src auth-service/src tracking-service/src analytics-service/src ops/src

fmt: install
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

# Regenerate docs/openapi.json (the contract a test holds the gateway to) from the code.
openapi: install
	$(RUN) python scripts/export_openapi.py

bench: install
	$(RUN) python -m bench --notes bench/results/analysis.md

# Mutation testing of the riskiest modules (long: not part of `make test`). Narrow it with
# e.g. MUTATION_ARGS="--module streaks --jobs 2"; see scripts/mutation.py.
mutation: install
	$(RUN) python scripts/mutation.py $(MUTATION_ARGS)

clean:
	rm -rf $(VENV) $(TOOLS)

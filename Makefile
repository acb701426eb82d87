# The two set-up commands: `make run` and `make test`. Each installs what is missing
# (Debian packages, the virtualenv, the JVM jars under .runtime/) and is fast the second time.
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

COMPOSE := docker compose -f docker-compose.kafka.yml

.PHONY: setup system run check test test-unit test-peers up down status clean down-all lock compose-up compose-down compose-check

setup: system $(STAMP)
	@$(BIN)/shopstream fetch

system:
	@bash infra/setup-system.sh

# From the lock, hashes checked (requirements-dev.lock: the project's dependencies with the test and bench extras),
# then the project itself without dependencies. uv installs them (pip installs uv first, from its lines of the same
# lock): 39 s against pip's 93 s with nothing cached. The image installs requirements.lock with pip, the same way.
$(STAMP): pyproject.toml requirements-dev.lock
	python3 -m venv $(VENV)
	awk '/^uv==/ {p = 1} p {print; if ($$0 !~ /\\$$/) exit}' requirements-dev.lock > $(VENV)/uv-requirement.txt
	$(BIN)/pip install -q --disable-pip-version-check --require-hashes -r $(VENV)/uv-requirement.txt
	$(BIN)/uv pip install -q --python $(BIN)/python --require-hashes -r requirements-dev.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e . -C editable_mode=compat
	@touch $@

# After a change to the dependencies in pyproject.toml: resolve again (network), then export both install lists.
UV_EXPORT := $(BIN)/uv export --frozen --no-emit-project --no-header --format requirements-txt -q
lock: $(STAMP)
	$(BIN)/uv lock
	$(UV_EXPORT) -o requirements.lock
	$(UV_EXPORT) --all-extras -o requirements-dev.lock

run: setup
	$(BIN)/shopstream run --summary-json .runtime/summary.json

# The house habits (STYLE 13): layers, lint, format and types, all pinned in pyproject.toml.
check: $(STAMP)
	$(BIN)/lint-imports --config pyproject.toml
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Two pytest workers, each with a stack of its own (the second in .runtime-gw1/, its ports + 20,000): each takes an
# integration file at a time, in order, and the unit tests between them (tests/conftest.py, tests/fixtures/workers.py).
# PYTEST_WORKERS=0: one process, one stack.
PYTEST_WORKERS ?= 2
test: setup check
	$(BIN)/pytest $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadgroup) $(PYTEST_ARGS)

test-unit: setup
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

# The Flink SQL and Kafka Connect peers' smoke tests: each installs its peer on first use (PyFlink: minutes).
test-peers: setup
	$(BIN)/pytest -m peers tests/integration/test_bench_peers.py $(PYTEST_ARGS)

up down status: setup
	$(BIN)/shopstream $@

# Docker users (no Docker engine is needed for compose-check: compose-go parses the file, as `docker compose
# config` does, and the static tests check what `up` needs).
compose-up:
	@test -f .env || { echo "no .env: run \`cp .env.example .env\` and change its passwords" >&2; exit 2; }
	$(COMPOSE) up -d --build

compose-down:
	$(COMPOSE) down

compose-check: $(STAMP)
	$(BIN)/pytest -q tests/unit/test_compose.py tests/unit/test_lock.py

# Stops the default stack and every test worker's (.runtime-gwN/, tests/fixtures/workers.py): a stack is found by
# its folder's pid files, so its ports need not be given.
down-all:
	-@for runtime in .runtime .runtime-gw*; do \
		if [ -d "$$runtime" ]; then SHOPSTREAM_RUNTIME_DIR="$(CURDIR)/$$runtime" $(BIN)/shopstream down; fi; \
	done

clean: down-all
	rm -rf .runtime .runtime-gw*

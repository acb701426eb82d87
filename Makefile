# The two set-up commands: `make run` and `make test`. Each installs what is missing
# (Debian packages, the virtualenv, the JVM jars under .runtime/) and is fast the second time.
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup system run check test test-unit up down status clean

setup: system $(STAMP)
	@$(BIN)/shopstream fetch

system:
	@bash infra/setup-system.sh

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -U pip
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test,bench]' --config-settings editable_mode=compat
	@touch $@

run: setup
	$(BIN)/shopstream run --summary-json .runtime/summary.json

# The house habits (STYLE 13): layers, lint, format and types, all pinned in pyproject.toml.
check: $(STAMP)
	$(BIN)/lint-imports --config pyproject.toml
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: setup check
	$(BIN)/pytest $(PYTEST_ARGS)

test-unit: setup
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

up down status: setup
	$(BIN)/shopstream $@

clean:
	-$(BIN)/shopstream down
	rm -rf .runtime

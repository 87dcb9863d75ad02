# Quick start:  make demo   (the audit of the bundled example organisation)
#               make test   (the whole test suite, SQLite and PostgreSQL)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_HOME ?= .demo-home

.PHONY: demo test chromium lint typecheck clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# The audit date comes from examples/planted.json, so the example's ages (and
# so its findings) stay the same as the calendar moves on.
demo: $(VENV)/.installed
	rm -rf $(DEMO_HOME)
	KEYSTEWARD_HOME=$(DEMO_HOME) $(BIN)/keysteward init
	KEYSTEWARD_HOME=$(DEMO_HOME) $(BIN)/keysteward import examples/
	KEYSTEWARD_HOME=$(DEMO_HOME) $(BIN)/keysteward audit --limit 25 \
		--as-of "$$($(BIN)/python -c 'import json; print(json.load(open("examples/planted.json"))["now"])')" \
		--html $(DEMO_HOME)/audit.html

# The browser tests drive the system Chromium; Debian's package provides it.
test: $(VENV)/.installed
	@command -v chromium >/dev/null || $(MAKE) chromium
	$(BIN)/python -m pytest

chromium:
	apt-get update -q && apt-get install -y -q chromium

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(VENV)/.installed
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(DEMO_HOME) .pytest_cache .mypy_cache .ruff_cache

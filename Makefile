# idgraph: make run (start the service), make test (the whole suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
GRAPHIQL := service/graphiql

.PHONY: install run test lint bench clean

install: $(INSTALLED)

$(INSTALLED): pyproject.toml $(GRAPHIQL)/package.json $(GRAPHIQL)/package-lock.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	npm ci --prefix $(GRAPHIQL) --no-audit --no-fund --loglevel=error
	touch $@

run: install
	$(BIN)/idgraph serve

test: install lint
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: install
	$(BIN)/python -m bench.quality --persons 20000
	$(BIN)/python -m bench.import_speed --persons 20000
	$(BIN)/python -m bench.api_ingest --events 20000

clean:
	rm -rf $(VENV) $(GRAPHIQL)/node_modules

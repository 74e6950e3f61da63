# idgraph: make run (start the service), make test (the whole suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
GRAPHIQL := service/graphiql

NEO4J_BOLT_PORT ?= 7687
NEO4J_DATA ?= .neo4j/data

.PHONY: install run test lint bench clean neo4j-up neo4j-down

install: $(INSTALLED)

$(INSTALLED): pyproject.toml $(GRAPHIQL)/package.json $(GRAPHIQL)/package-lock.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	npm ci --prefix $(GRAPHIQL) --no-audit --no-fund --loglevel=error
	touch $@

run: install
	$(BIN)/idgraph serve

# The suite runs against both stores: a real Neo4j is started around it (and the
# run fails, loudly, if it cannot start).
test: install lint
	$(BIN)/python tests/local_neo4j/launcher.py run -- $(BIN)/python -m pytest

neo4j-up: install
	$(BIN)/python tests/local_neo4j/launcher.py up --port $(NEO4J_BOLT_PORT) --data $(NEO4J_DATA)

neo4j-down: install
	$(BIN)/python tests/local_neo4j/launcher.py down --data $(NEO4J_DATA)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: install
	$(BIN)/python -m bench.quality --persons 20000
	$(BIN)/python -m bench.import_speed --persons 20000
	$(BIN)/python -m bench.api_ingest --persons 4000
	$(BIN)/python -m bench.serve
	$(BIN)/python -m bench.accounts --companies 300
	$(BIN)/python -m bench.account_filters --accounts 200000
	$(BIN)/python -m bench.api_ingest --persons 4000 --behaviour 8 --tags
	$(BIN)/python -m bench.tags --persons 53000
	$(BIN)/python -m bench.segments
	$(BIN)/python -m bench.api_ingest --persons 4000 --behaviour 8 --tags --segments

clean:
	rm -rf $(VENV) $(GRAPHIQL)/node_modules .neo4j

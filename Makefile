# Every target sets up .venv first, so each works on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= config/gateway.yaml
HOST ?= 127.0.0.1
PORT ?= 5000

.DEFAULT_GOAL := all
.PHONY: all install format lint test serve bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest

serve: install
	$(BIN)/llm-gateway serve --config $(CONFIG) --host $(HOST) --port $(PORT)

# One table: the gateway (tracking + metrics on), direct-to-mock, the bare reference proxies, MLflow's
# gateway and LiteLLM's proxy; then the targets as ratios. About 15 minutes (first run installs the peers).
bench: install
	ANCHORS=direct,ref-httpx-orjson,ref-httpxaio-orjson,ref-aiohttp-orjson,mlflow,litellm bench/compare.sh

all: test

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

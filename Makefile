# Two commands for a newcomer: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test bench drill lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/python -m studio.launcher run

test: $(VENV)/.installed
	$(BIN)/python -m studio.launcher test $(ARGS)

bench: $(VENV)/.installed
	$(BIN)/python -m studio.launcher bench $(ARGS)

# The studio on separate network hosts of this machine, with faults (needs root).
drill: $(VENV)/.installed
	$(BIN)/python -m tests.drill

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) data/test-redis data/bench-redis

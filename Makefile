# The README's two commands: `make demo` and `make test`. Both set up what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: demo test lint format bench clean system-deps

$(STAMP): pyproject.toml scripts/system-deps.sh
	PYTHON=$(PYTHON) bash scripts/system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

system-deps:
	PYTHON=$(PYTHON) bash scripts/system-deps.sh

test: $(STAMP)
	$(BIN)/ruff check cpsign_airflow dags tests benchmarks
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/python -m cpsign_airflow.demo $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check cpsign_airflow dags tests benchmarks
	$(BIN)/ruff format --check cpsign_airflow dags tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format cpsign_airflow dags tests benchmarks
	$(BIN)/ruff check --fix cpsign_airflow dags tests benchmarks

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

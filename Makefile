# The README's two commands: `make demo` and `make test`. Both set up what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
DEMO_ARGS ?=
# The versions the test suite passed with (make constraints). `make test CONSTRAINTS=`
# installs without them, e.g. to take up a changed dependency before regenerating them.
CONSTRAINTS ?= constraints/constraints-3.11.txt

.PHONY: demo test lint format bench clean system-deps constraints

$(STAMP): pyproject.toml scripts/system-deps.sh $(CONSTRAINTS)
	PYTHON=$(PYTHON) bash scripts/system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]' $(if $(CONSTRAINTS),-c $(CONSTRAINTS))
	touch $(STAMP)

# Freeze $(VENV), the environment the tests pass in, into constraints/constraints-<python>.txt.
constraints:
	@test -x $(BIN)/python || { echo "no $(VENV): run make test first" >&2; exit 1; }
	@py=$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	out=constraints/constraints-$$py.txt; mkdir -p constraints; \
	{ echo "# Versions cpsign-airflow's test suite passed with (Python $$py, $$(uname -s) $$(uname -m))."; \
	  echo "# Generated $$(date -u +%Y-%m-%d) by \`make constraints\`: pip freeze --exclude-editable of $(VENV),"; \
	  echo "# without the package itself. Use: pip install -e '.[test]' -c $$out"; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -vi '^cpsign[-_]airflow[=@ ]'; \
	} > $$out.tmp && mv $$out.tmp $$out && echo "wrote $$out"

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

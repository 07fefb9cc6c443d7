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
# The lowest Airflow supported (pyproject.toml's floor): `make test-floor` runs the suite on it
# in its own venv, with the versions it passed with there (make constraints-floor).
FLOOR_VENV ?= .venv-floor
FLOOR_SUFFIX ?= -airflow-3.2
FLOOR_CONSTRAINTS ?= constraints/constraints-3.11$(FLOOR_SUFFIX).txt

.PHONY: demo test lint format bench clean system-deps constraints dist test-floor pytest constraints-floor docs \
	base-images compose-test

$(STAMP): pyproject.toml scripts/system-deps.sh $(CONSTRAINTS)
	PYTHON=$(PYTHON) bash scripts/system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all,test]' $(if $(CONSTRAINTS),-c $(CONSTRAINTS))
	touch $(STAMP)

# Freeze $(VENV), the environment the tests pass in, into constraints/constraints-<python>.txt
# (constraints-floor: $(FLOOR_VENV) into constraints-<python>$(FLOOR_SUFFIX).txt).
constraints-floor:
	$(MAKE) VENV=$(FLOOR_VENV) CONSTRAINTS_SUFFIX=$(FLOOR_SUFFIX) constraints

constraints:
	@test -x $(BIN)/python || { echo "no $(VENV): run make test first" >&2; exit 1; }
	@py=$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	out=constraints/constraints-$$py$(CONSTRAINTS_SUFFIX).txt; mkdir -p constraints; \
	{ echo "# Versions cpsign-airflow's test suite passed with (Python $$py, $$(uname -s) $$(uname -m))."; \
	  echo "# Generated $$(date -u +%Y-%m-%d) by \`make constraints\`: pip freeze --exclude-editable of $(VENV),"; \
	  echo "# without the package itself. Use: pip install -e '.[test]' -c $$out"; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -vi '^cpsign[-_]airflow[=@ ]'; \
	} > $$out.tmp && mv $$out.tmp $$out && echo "wrote $$out"

system-deps:
	PYTHON=$(PYTHON) bash scripts/system-deps.sh

test: $(STAMP)
	$(BIN)/ruff check cpsign_airflow dags tests benchmarks scripts
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The suite (no lint: make test does that) on the floor Airflow, in $(FLOOR_VENV).
test-floor:
	$(MAKE) VENV=$(FLOOR_VENV) CONSTRAINTS=$(FLOOR_CONSTRAINTS) pytest

pytest: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/python -m cpsign_airflow.demo $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check cpsign_airflow dags tests benchmarks scripts
	$(BIN)/ruff format --check cpsign_airflow dags tests benchmarks scripts

format: $(STAMP)
	$(BIN)/ruff format cpsign_airflow dags tests benchmarks scripts
	$(BIN)/ruff check --fix cpsign_airflow dags tests benchmarks scripts

# The release check: sdist and wheel in dist/, twine check, then tests/release: the wheel in a
# fresh venv outside the repository without extras (binary-only), providers and plugin listed,
# a connection test against the local pachd, the bundled DAGs parsed. build and twine run
# from their own venv ($(DIST_TOOLS)), not the test venv.
DIST_TOOLS ?= build/dist-tools
dist: $(STAMP)
	rm -rf dist
	test -x $(DIST_TOOLS)/bin/python || $(PYTHON) -m venv $(DIST_TOOLS)
	$(DIST_TOOLS)/bin/python -m pip install --quiet --upgrade pip build twine
	$(DIST_TOOLS)/bin/python -m build --outdir dist .
	$(DIST_TOOLS)/bin/twine check --strict dist/*
	CPSIGN_DIST_DIR=dist CPSIGN_DIST_CONSTRAINTS=$(CONSTRAINTS) \
		$(BIN)/python -m pytest -m dist tests/release -p no:cacheprovider -v

# The docs site (mkdocs.yml): `mkdocs build --strict` into site/, from its own venv
# ($(DOCS_VENV), pinned by docs/requirements.txt). It needs neither the package nor Airflow:
# griffe reads the API reference from the source; scripts/docs/provider_reference.py
# generates the connection, configuration and API pages from provider.yaml at build time.
DOCS_VENV ?= .venv-docs
DOCS_STAMP := $(DOCS_VENV)/.installed-stamp
$(DOCS_STAMP): docs/requirements.txt
	$(PYTHON) -m venv $(DOCS_VENV)
	$(DOCS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(DOCS_VENV)/bin/python -m pip install --quiet -r docs/requirements.txt
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(DOCS_VENV)/bin/mkdocs build --strict

# The base images the Dockerfiles and docker-compose.yaml name: used if present, else pulled,
# else (no registry reachable) stand-ins built from Debian's archive with debootstrap
# (images/base-standins/). EXTRA_CA_CERTS_FILE and PIP_INDEX_URL reach the builds
# (docs/deployment.md, "Offline and behind a proxy").
base-images:
	bash scripts/base_images.sh

# The real artifacts end to end (as root where Docker is missing): the engine and Compose v2,
# the base images, both images from the repository's Dockerfiles (sizes printed), the compose
# stack up, cpsign_setup and cpsign_training through the REST API, the model in pachd and the
# bookkeeping row, the models page, a forged JWT refused; everything down, also on failure.
compose-test: $(STAMP)
	PYTHON=$(abspath $(BIN))/python bash scripts/compose_test.sh

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(DOCS_VENV) site $(VENV) $(FLOOR_VENV) build dist *.egg-info .pytest_cache

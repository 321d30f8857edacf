# Two entry points for a fresh machine (see README): `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
export PREFECT_SERVER_ANALYTICS_ENABLED := false

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# the CPU build of torch (a CUDA build is several GB); then mixopt and its pinned dependencies
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $@

.PHONY: install demo test test-fast lint bench serve
install: $(VENV)/.installed

demo: $(VENV)/.installed  ## the whole search on the built-in corpus
	$(VENV)/bin/mixopt run

lint: $(VENV)/.installed  ## ruff (configured in pyproject.toml)
	$(VENV)/bin/ruff check mixopt tests benchmarks

test: lint  ## ruff, then the test suite on 2 workers (integration tests, which start servers and clusters, in their own session)
	$(PY) -m pytest -q -n 2 --durations=15 --ignore=tests/integration
	$(PY) -m pytest -q --durations=15 tests/integration

test-fast: $(VENV)/.installed  ## the quick tier: no slow, integration or GPU tests (about 2 minutes here)
	$(PY) -m pytest -q -n 2 -m "not slow and not integration and not gpu" --ignore=tests/integration

bench: $(VENV)/.installed  ## regressor benchmark on RegMix's public table
	$(PY) benchmarks/regmix_table.py

serve: $(VENV)/.installed  ## Prefect server (127.0.0.1:4200) + `mixopt` pool + `prefect deploy --all` + a worker
	VENV=$(VENV) bash scripts/serve.sh

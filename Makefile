# lstmlens: `make demo` and `make test` are the whole quick start.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev

.PHONY: demo test test-fast lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml constraints.txt | $(PY)
	$(PIP) install -q -c constraints.txt -e .
	touch $@

$(DEVSTAMP): pyproject.toml constraints.txt | $(PY)
	$(PIP) install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP) $@

demo: $(STAMP)
	$(VENV)/bin/lstmlens forecast train --test-origins 52 --out runs/demo --force

test: $(DEVSTAMP)
	@bash scripts/ensure_chromium.sh
	$(PY) -m pytest

# The inner loop: no slow tests (gradchecks, long trainings) and no browser.
test-fast: $(DEVSTAMP)
	$(PY) -m pytest -m "not slow and not browser"

lint: $(DEVSTAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/ruff format --check src tests benchmarks examples
	$(VENV)/bin/mypy

bench: $(DEVSTAMP)
	$(PY) benchmarks/kernels.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .mypy_cache

# Every target sets up .venv on its own, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow test-newest-aiohttp lint types docs serve bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The demo needs the package and its two dependencies, not the dev tools.
DEMO_STAMP := $(VENV)/.installed-demo

$(DEMO_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/python examples/demo.py

lint: $(STAMP)
	$(BIN)/ruff check streamkit tests examples benchmarks conftest.py
	$(BIN)/lint-imports

types: $(STAMP)
	$(BIN)/mypy

docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir site

test: lint types docs
	$(BIN)/pytest -q

test-slow: $(STAMP)
	$(BIN)/pytest -q -m slow

# Users get the newest aiohttp; the dev extra pins aiohttp<3.14 because aioresponses cannot
# build 3.14's responses. This runs every test but those on the newest aiohttp, in a venv
# of its own (aioresponses stays installed there only because test helpers import it).
NEWEST := .venv-newest-aiohttp

test-newest-aiohttp:
	$(PYTHON) -m venv $(NEWEST)
	$(NEWEST)/bin/pip install --quiet --upgrade pip
	$(NEWEST)/bin/pip install --quiet -e '.[dev]'
	$(NEWEST)/bin/pip install --quiet --upgrade aiohttp
	$(NEWEST)/bin/python -c "import aiohttp; print('aiohttp', aiohttp.__version__)"
	$(NEWEST)/bin/pytest -q -m 'not slow and not aioresponses' -p no:cacheprovider

serve: $(STAMP)
	$(BIN)/streamkit serve

bench: $(STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(NEWEST) .mypy_cache .pytest_cache .ruff_cache site

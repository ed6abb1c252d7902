# Two commands do everything on a fresh machine (Python 3.11+, git, make, Node):
#   make demo   - a real backup and listing against a throwaway PostgreSQL and S3
#   make test   - lint, type-check and the whole test suite
#   make test-fast - the unit and integration tiers only (under a minute), while you work
# Both create the virtualenv in .venv and install what they need first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install demo test test-fast lint clean

$(INSTALLED): pyproject.toml package-lock.json
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	npm ci --no-audit --no-fund --loglevel=error
	touch $(INSTALLED)

install: $(INSTALLED)

demo: $(INSTALLED)
	$(BIN)/python -m testbed.demo

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/mypy

# Two workers (pytest-xdist): the suite waits on PostgreSQL, psql and S3 as much as it
# computes; each worker starts its own servers. `loadscope` keeps a module's tests together.
test: lint
	$(BIN)/pytest -n 2 --dist loadscope

test-fast: $(INSTALLED)
	$(BIN)/pytest -n 2 --dist loadscope tests/unit tests/integration

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache

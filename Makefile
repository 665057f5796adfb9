# hipcoach developer entry points. A fresh clone needs only Python 3.11+ on PATH:
#   make run    apply migrations, then start everything (console chat without credentials)
#   make test   lint, then the test suite
# The virtualenv in .venv is (re)installed only when pyproject.toml changes.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Tried in this order; the first one that is 3.11 or newer builds the virtualenv.
PYTHON_CANDIDATES := python3.13 python3.12 python3.11 python3

.DEFAULT_GOAL := help
.PHONY: help venv run test lint clean distclean

help:
	@echo "make venv       create $(VENV) and install hipcoach with its dev tools"
	@echo "make run        migrate the database, then run hipcoach"
	@echo "make test       ruff check, mypy, then pytest"
	@echo "make lint       ruff check and mypy"
	@echo "make clean      remove caches and build output (keeps $(VENV))"
	@echo "make distclean  clean, and remove $(VENV)"

venv: $(STAMP)

$(STAMP): pyproject.toml
	@if [ -x "$(BIN)/python" ] && ! "$(BIN)/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then \
	  echo "error: $(VENV) was made with Python older than 3.11; run 'make distclean' and retry" >&2; \
	  exit 1; \
	fi
	@if [ ! -x "$(BIN)/python" ]; then \
	  py=""; \
	  for cand in $(PYTHON_CANDIDATES); do \
	    if command -v "$$cand" >/dev/null 2>&1 \
	      && "$$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then \
	      py="$$cand"; break; \
	    fi; \
	  done; \
	  if [ -z "$$py" ]; then \
	    echo "error: hipcoach needs Python 3.11 or newer; none of $(PYTHON_CANDIDATES) on PATH is." >&2; \
	    exit 1; \
	  fi; \
	  echo "Creating $(VENV) with $$(command -v "$$py") ($$("$$py" -V 2>&1))"; \
	  "$$py" -m venv "$(VENV)"; \
	fi
	"$(BIN)/python" -m pip install --quiet -e '.[dev]'
	@touch "$(STAMP)"

run: venv
	"$(BIN)/hipcoach" db upgrade
	"$(BIN)/hipcoach" run

test: venv
	"$(BIN)/ruff" check .
	"$(BIN)/mypy"
	"$(BIN)/pytest" -q

lint: venv
	"$(BIN)/ruff" check .
	"$(BIN)/mypy"

clean:
	rm -rf build dist .pytest_cache .ruff_cache .hypothesis ./*.egg-info
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -print0 | xargs -0 rm -rf

distclean: clean
	rm -rf "$(VENV)"

# One target per habit; CI (.ci/run) runs the same commands.
PY := .venv/bin/python
TEST_CMD := $(PY) -m pytest -n auto

.PHONY: help install test test-fast lint fmt docs serve demo ci

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

install:  ## Create .venv and install mailshot with the development tools
	python3 -m venv .venv && .venv/bin/pip install -e '.[dev]'

test:  ## Every test, on SQLite and PostgreSQL (the README's test command)
	$(TEST_CMD)

test-fast:  ## Unit and integration tests only (no real servers or browsers)
	$(PY) -m pytest -n auto tests/unit tests/integration

lint:  ## ruff (lint and format check) and mypy (strict)
	.venv/bin/ruff check src tests
	.venv/bin/ruff format --check src tests
	.venv/bin/mypy src

fmt:  ## Format and fix what ruff can
	.venv/bin/ruff format src tests
	.venv/bin/ruff check --fix src tests

docs:  ## Regenerate docs/ERRORS.md from the error catalogue
	.venv/bin/mailshot errors --markdown --output docs/ERRORS.md

serve:  ## Run the embedded default with the demo data
	.venv/bin/mailshot serve --demo

demo:  ## Load the demo data set into the configured databases
	.venv/bin/mailshot demo

ci:  ## What CI runs, on this machine
	bash .ci/run

# Two entry points (see README): `make run` and `make test`. Each sets up .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

run: $(STAMP)
	$(BIN)/stratify run configs/mirocals.yaml

test: $(STAMP) lint
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests experiments
	$(BIN)/ruff format --check src tests experiments

format: $(STAMP)
	$(BIN)/ruff format src tests experiments
	$(BIN)/ruff check --fix src tests experiments

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

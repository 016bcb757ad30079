# Two commands do all set-up on a fresh machine: `make demo` and `make test`. Both create .venv idempotently
# (so does `make lint`; `make test-gpu` uses a CUDA Python instead, see below).
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-gpu venv clean-venv lint

venv: $(STAMP)

# torch is installed first and alone (the CPU build), then everything else is held to constraints-cpu.txt so no
# resolver can swap torch for a CUDA build.
$(STAMP): requirements-cpu.txt constraints-cpu.txt setup.py
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install -q --disable-pip-version-check -c constraints-cpu.txt -r requirements-cpu.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Two workers, one test file each at a time (--dist loadfile keeps a file's module fixtures in one process): most
# tests wait on single-threaded subprocesses, so two cores finish the suite in little more than half the time.
test: $(STAMP)
	$(BIN)/python -m pytest tests -q -ra -n 2 --dist loadfile --durations=15

# The GPU tier (tests marked gpu, skipped without CUDA) needs a CUDA build of the stack, not the CPU .venv: the NeMo
# container of the Dockerfile, or the H200 with the wheel bundle (bench/gpu_test_tier.sh, which needs no pytest).
GPU_PY ?= python3
test-gpu:
	$(GPU_PY) -m pytest tests/test_gpu.py -m gpu -q -ra -s

# Ruff's rules and the files not yet clean are in pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

demo: $(STAMP)
	$(BIN)/python -m nemo_cosmos_ar.demo

clean-venv:
	rm -rf $(VENV)

# AstroReason: `make demo` and `make test` set up .venv on first use and reuse it afterwards.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.astroreason-setup
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup test lint demo demo-all bench lock clean

setup: $(STAMP)

# torch first, from the registry (see requirements/torch.txt), then the frozen lock with --no-deps,
# then this package in editable mode. Re-runs only when one of these files changes.
$(STAMP): requirements/torch.txt requirements/cpu.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "setting up $(VENV) (first time: a few minutes, about 7 GB)"
	$(PY) -m pip install --isolated -q -r requirements/torch.txt
	$(PY) -m pip install -q --no-deps -r requirements/cpu.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	@touch $(STAMP)

SOURCES = astroreason tools envs training eval tests benchmarks

lint: setup
	$(VENV)/bin/ruff check $(SOURCES)
	$(VENV)/bin/ruff format --check --quiet $(SOURCES)

test: setup lint
	$(PY) -m pytest -q

demo: setup
	$(VENV)/bin/astroreason demo --task galaxies

demo-all: setup
	$(VENV)/bin/astroreason demo --task all

bench: setup
	$(PY) benchmarks/run_all.py $(ONLY)

# Refreeze requirements/cpu.txt from requirements/cpu.in (torch family excluded: it comes from torch.txt).
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install -q -r requirements/cpu.in
	( echo "# Full lock of the CPU stack, installed with --no-deps after requirements/torch.txt. Regenerate: make lock"; \
	  .venv-lock/bin/pip freeze | grep -viE '^(torch|torchvision|torchaudio|torchcodec|triton|nvidia-|cuda-)' ) > requirements/cpu.txt
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) build dist *.egg-info

# Two entry points for a fresh machine: `make run` (install + launch the app) and
# `make test` (install + run the suite). Both build .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The tested torch. pip takes the CPU build from this machine's local wheel; elsewhere
# override it, e.g. `make TORCH='torch --index-url https://download.pytorch.org/whl/cpu' run`.
TORCH  ?= torch==2.13.0

.PHONY: run test bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/charlstm-tui

test: install
	$(BIN)/python -m pytest -q

bench: install
	for b in generate data train app quick explorer; do $(BIN)/python bench/$$b.py || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info

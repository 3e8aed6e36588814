# The two README commands: `make demo` (main job on an embedded default) and `make test` (the test suite).
# Both create or reuse a local virtual environment in .venv, installed with the pinned stack of constraints.txt.

PYTHON ?= python3
VENV   ?= .venv
STAMP  := $(VENV)/.installed-stamp
export XDG_CACHE_HOME ?= $(CURDIR)/.cache

.PHONY: venv demo test bench clean

$(STAMP): pyproject.toml constraints.txt ndx_extensions/ndx-ldns/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade "pip>=24"
	$(VENV)/bin/python -m pip install --quiet -c constraints.txt -e ndx_extensions/ndx-ldns -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash examples/lorenz_demo.sh

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

bench: $(STAMP)
	for script in benchmarks/bench_*.py; do $(VENV)/bin/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .cache demo-output .pytest_cache

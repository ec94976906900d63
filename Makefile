# Two commands on a fresh machine: `make demo` and `make test`.
# Both create .venv and install requirements on first use (a stamp file skips it afterwards).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python app.py demo --out out/demo --force

test: lint
	bash scripts/ensure-browser
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench.bench_routing
	$(BIN)/python -m bench.bench_coverage
	$(BIN)/python -m bench.bench_optimize
	$(BIN)/python -m bench.bench_whatif
	$(BIN)/python -m bench.bench_studio
	$(BIN)/python -m bench.bench_dask

clean:
	rm -rf $(VENV) out .cache

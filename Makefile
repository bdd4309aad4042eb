# Every target sets itself up: a fresh machine needs only Python 3.11 and pip.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ctsentinel demo

test: $(STAMP)
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench tools
	$(BIN)/mypy src/ctsentinel   # --strict over the whole package (pyproject.toml)
	$(BIN)/lint-imports --no-cache   # the layers of DESIGN.md section 2 (pyproject.toml)
	$(BIN)/python tools/import_graph.py --check   # no import cycle between modules

# The large-log benchmarks default to 1,000,000 entries when run by hand; `make bench` uses BENCH_ENTRIES.
BENCH_ENTRIES ?= 100000

bench: $(STAMP)
	set -e; for f in merkle certs watch ca_policy lint store notify; do echo "== bench/$${f}_bench.py"; $(BIN)/python bench/$${f}_bench.py; done
	set -e; for f in testlog populate monitor ca_watch; do \
	  echo "== bench/$${f}_bench.py --entries $(BENCH_ENTRIES)"; $(BIN)/python bench/$${f}_bench.py --entries $(BENCH_ENTRIES); done

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache

# Two commands: `make demo` runs pagelab's main job, `make test` runs the whole test suite.
# Each builds the virtual environment it needs in .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/pagelab demo

test: $(BIN)/.installed
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy --strict --ignore-missing-imports src/pagelab
	$(BIN)/python -m pytest tests

bench: $(BIN)/.installed
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python bench/bench_mmu.py

clean:
	rm -rf $(VENV) build src/*.egg-info

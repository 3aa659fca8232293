# Two commands: `make demo` runs pagelab's main job, `make test` runs the whole test suite.
# Each builds the virtual environment it needs in .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-long lint bench clean

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

# The long profiles (PAGELAB_LONG=1): 100 interrupt seeds per backend, >= 10,000 syscall argument tuples
# against the kernel, >= 100,000 state-machine steps. Takes about an hour on 2 cores.
test-long: $(BIN)/.installed
	PAGELAB_LONG=1 $(BIN)/python -m pytest tests -p no:cacheprovider --hypothesis-show-statistics

bench: $(BIN)/.installed
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python bench/bench_mmu.py
	$(BIN)/python bench/bench_tlb.py
	$(BIN)/python bench/bench_files.py

clean:
	rm -rf $(VENV) build src/*.egg-info

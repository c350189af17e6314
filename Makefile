# Every target creates or reuses .venv and installs what it needs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXAMPLE := notebooks/02_tagged_pipeline.ipynb

.PHONY: install demo test lint lab bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: install
	$(BIN)/jupyter-mlops graph $(EXAMPLE)

lint: install
	$(BIN)/ruff check jupyter_mlops tests benchmarks

test: lint
	$(BIN)/python -m pytest tests

lab: install
	$(BIN)/jupyter lab --ip=127.0.0.1 notebooks

bench: install
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .mlops build dist

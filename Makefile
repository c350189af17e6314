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
	$(BIN)/python -m jupyter_mlops.demo $(EXAMPLE)

# ruff, mypy (settings in pyproject.toml) and the dead-code check: vulture reads the tests and
# benchmarks as the package's users and reports on the package (exit 3 means it found some).
lint: install
	$(BIN)/ruff check jupyter_mlops tests benchmarks
	$(BIN)/mypy
	$(BIN)/vulture > $(VENV)/vulture.txt || test $$? -eq 3
	! grep '^jupyter_mlops/' $(VENV)/vulture.txt
	$(MAKE) lint-ts

# Browser tests refresh the README's screenshots.
test: lint ui-deps pg-deps labextension
	MLOPS_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest tests

lab: install labextension
	$(BIN)/jupyter lab --ip=127.0.0.1 notebooks

bench: install
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .mlops build dist mlflow.db mlflow.db.lock mlruns .jupyter_mlops

# The JupyterLab extension: rebuilt when its sources change, and linked into the venv so
# `jupyter lab` serves the fresh build (an editable install copies it once).
.PHONY: ui-deps pg-deps labextension
LABEXT_SOURCES := $(wildcard labextension/src/*.ts labextension/style/* labextension/schema/*.json) \
	labextension/package.json labextension/package-lock.json

labextension: .make-labextension

.make-labextension: $(STAMP) $(LABEXT_SOURCES) labextension/node_modules/.package-lock.json
	cd labextension && npm run build:prod
	rm -rf $(VENV)/share/jupyter/labextensions/jupyter-mlops
	mkdir -p $(VENV)/share/jupyter/labextensions
	ln -s $(CURDIR)/jupyter_mlops/labextension $(VENV)/share/jupyter/labextensions/jupyter-mlops
	touch $@

labextension/node_modules/.package-lock.json: labextension/package-lock.json
	cd labextension && npm ci --no-audit --no-fund

# Browser tests drive Debian's Chromium (never `playwright install`).
ui-deps: install
	test -x /usr/bin/chromium || (apt-get update && apt-get install -y chromium)

# Tests of the shared server run a private PostgreSQL cluster (initdb in a temp dir, on 127.0.0.1)
# from Debian's server binaries, never a system service.
pg-deps:
	ls /usr/lib/postgresql/*/bin/initdb > /dev/null 2>&1 || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql)

# A shared MLflow server on a private PostgreSQL, as the tests start it (README, "For teams").
.PHONY: team-server
team-server: install pg-deps
	$(BIN)/python tests/pg_server.py

# The package as a user installs it: the sdist, and the wheel built from it, by `build` (in
# a tools venv under build/; hatchling and hatch-jupyter-builder come in its isolated build);
# then tests/packaging/dist_check.py checks what they hold and installs the wheel into a fresh
# venv with no node on PATH, where `jupyter labextension list` and `jupyter server extension
# list` must show jupyter-mlops enabled. About 1.5 min (plus 20 s for the tools venv once).
.PHONY: dist-check
DIST_CHECK := build/dist-check
dist-check: install labextension
	test -x $(DIST_CHECK)/tools/bin/python || ($(PYTHON) -m venv $(DIST_CHECK)/tools \
		&& $(DIST_CHECK)/tools/bin/python -m pip install --quiet build)
	rm -rf $(DIST_CHECK)/dist
	$(DIST_CHECK)/tools/bin/python -m build --outdir $(DIST_CHECK)/dist . \
		> $(DIST_CHECK)/build.log 2>&1 || (tail -40 $(DIST_CHECK)/build.log; false)
	$(BIN)/python tests/packaging/dist_check.py $(DIST_CHECK)

# The extension's TypeScript: ESLint (labextension/eslint.config.mjs) and Prettier's check
# (labextension/.prettierrc); `cd labextension && npm run lint` fixes what they can.
.PHONY: lint-ts
lint-ts: labextension/node_modules/.package-lock.json
	cd labextension && npm run --silent lint:check

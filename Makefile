# BanHammer: every target installs what it needs first, so a fresh clone needs only `make dev` / `make test`.
PY      ?= python3
VENV    := .venv
PYTHON  := $(VENV)/bin/python
BUF     := node_modules/.bin/buf
export PYTHONPATH := $(CURDIR):$(CURDIR)/gen

.PHONY: install deps gen lint test dev stop status demo bench clean

install: deps gen

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -q -e '.[dev]'
	touch $@

node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

deps: $(VENV)/.installed node_modules/.installed

gen: $(VENV)/.installed
	PYTHON=$(PYTHON) bash scripts/gen_protos.sh

lint: install
	$(BUF) lint
	$(VENV)/bin/ruff check services bench tests scripts deploy

test: install lint
	$(PYTHON) -m pytest

dev: install
	$(PYTHON) deploy/local/stack.py up

stop:
	$(PYTHON) deploy/local/stack.py down

status:
	$(PYTHON) deploy/local/stack.py status

demo: install
	$(PYTHON) scripts/demo.py

bench: install
	$(PYTHON) -m bench

clean: stop
	rm -rf gen build .local

# BanHammer: every target installs what it needs first, so a fresh clone needs only `make dev` / `make test`.
PY      ?= python3
# Playwright (console browser tests) drives /usr/bin/chromium; it must never fetch a browser.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1
VENV    := .venv
PYTHON  := $(VENV)/bin/python
BUF     := node_modules/.bin/buf

.PHONY: install deps gen console lint test dev stop status demo bench clean

install: deps gen console

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -q -e '.[dev]'
	touch $@

# `npm ci`: installs exactly the committed lock file and never rewrites it.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

deps: $(VENV)/.installed node_modules/.installed

# The .pth file puts gen/ (the stubs) and the repository on the venv's path, so every command in the
# README (`python -m bench.ingest`, `python -m services.session issue-token`) works without PYTHONPATH.
gen: $(VENV)/.installed
	PYTHON=$(PYTHON) bash scripts/gen_protos.sh
	$(PYTHON) -c 'import pathlib, sys, sysconfig; pathlib.Path(sysconfig.get_paths()["purelib"], "banhammer-repo.pth").write_text("".join(p + "\n" for p in sys.argv[1:]))' "$(CURDIR)/gen" "$(CURDIR)"

# The console's web app (Preact + Chart.js, bundled by esbuild from node_modules) into build/console.
console: build/console/index.html

build/console/index.html: node_modules/.installed scripts/build_console.sh $(wildcard services/console/web/*)
	bash scripts/build_console.sh

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

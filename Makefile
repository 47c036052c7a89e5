# BanHammer: every target installs what it needs first, so a fresh clone needs only `make dev` / `make test`.
PY      ?= python3
# Playwright (console browser tests) drives /usr/bin/chromium; it must never fetch a browser.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1
VENV    := .venv
PYTHON  := $(VENV)/bin/python
BUF     := node_modules/.bin/buf

.PHONY: install deps gen console lint test dev stop status demo bench clean doctor backup restore wheel

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

# The game-server SDK (clients/python), editable and without its own copy of the stubs: here gen/
# provides them (its wheel generates its own, see `make wheel`).
$(VENV)/.client-installed: $(VENV)/.installed clients/python/pyproject.toml clients/python/setup.py
	BANHAMMER_CLIENT_STUBS=skip $(PYTHON) -m pip install -q --no-build-isolation --no-deps -e ./clients/python
	touch $@

deps: $(VENV)/.installed node_modules/.installed $(VENV)/.client-installed

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
	$(VENV)/bin/ruff check services bench tests scripts deploy ops clients

test: install lint
	$(PYTHON) -m pytest

dev: install
	$(PYTHON) deploy/local/stack.py up

stop:
	$(PYTHON) deploy/local/stack.py down

status:
	$(PYTHON) deploy/local/stack.py status

# The store check and backups of the local stack (`python -m ops` reads the same variables anywhere else).
STACK_ENV = eval "$$($(PYTHON) deploy/local/stack.py env)"

doctor: install
	@$(STACK_ENV) && $(PYTHON) -m ops doctor

backup: install
	@test -n "$(DIR)" || { echo "usage: make backup DIR=<new or empty directory>"; exit 2; }
	@$(STACK_ENV) && $(PYTHON) -m ops backup "$(DIR)"

restore: install
	@test -n "$(DIR)" || { echo "usage: make restore DIR=<backup directory> [FORCE=1]"; exit 2; }
	@$(STACK_ENV) && $(PYTHON) -m ops restore $(if $(FORCE),--force) "$(DIR)"

demo: install
	$(PYTHON) scripts/demo.py

# The SDK's wheel (stubs generated into it from protos/), as a game server installs it.
wheel: install
	$(PYTHON) -m pip wheel -q --no-build-isolation --no-deps -w build/wheels ./clients/python
	@ls build/wheels/banhammer_client-*.whl

bench: install
	$(PYTHON) -m bench

clean: stop
	rm -rf gen build .local

# Two commands: `make run` starts the sandbox, `make test` runs every test. Both install what they need.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && echo $$p && break; done)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check

.PHONY: run test test-python test-js install browser bench clean

$(PY):
	@test -n "$(PYTHON)" || { echo "make: Authpipe needs Python >= 3.11 (python3.11, python3.12 or python3.13 on PATH)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(VENV)/.run-installed: server/pyproject.toml | $(PY)
	$(PIP) install -q -e ./server
	@touch $@

$(VENV)/.test-installed: server/pyproject.toml | $(PY)
	$(PIP) install -q -e './server[test]'
	@touch $@ $(VENV)/.run-installed

install: $(VENV)/.run-installed

# The browser tests (server/tests/browser) drive Debian's chromium through Playwright; never
# `playwright install` (it downloads its own browser). Installed once, when /usr/bin/chromium is missing.
CHROMIUM := /usr/bin/chromium

browser: $(CHROMIUM)

$(CHROMIUM):
	@command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] || { echo "make: the browser tests need Chromium at $(CHROMIUM): run as root, or install Debian's chromium package yourself" >&2; exit 1; }
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
	@test -x $@ || { echo "make: installing chromium did not provide $@" >&2; exit 1; }

# `make run PORT=8081 HOST=0.0.0.0`: the sandbox elsewhere than 127.0.0.1:8080 (AUTHPIPE_PORT/HOST work too).
run: $(VENV)/.run-installed
	$(VENV)/bin/authpipe dev $(if $(PORT),--port $(PORT)) $(if $(HOST),--host $(HOST))

test: test-python test-js

# axe-core, for the browser tests' accessibility checks (server/tests/browser/accessibility.py).
AXE := server/tests/browser/node_modules/axe-core/axe.min.js

$(AXE): server/tests/browser/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "make: the browser tests need Node.js >= 20 and npm (for axe-core)" >&2; exit 1; }
	cd server/tests/browser && npm ci --no-audit --no-fund
	@touch $@

# pytest's exit code 5 means it collected no tests: that is a failure here, never a pass.
test-python: $(VENV)/.test-installed $(CHROMIUM) $(AXE)
	cd server && ../$(PY) -m pytest; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "make: pytest collected no tests" >&2; exit 1; fi; exit $$rc
	$(PIP) install -q -e ./sdk/python && $(PY) -m pytest sdk/python/tests; rc=$$?; if [ $$rc -eq 5 ]; then echo "make: pytest collected no SDK tests" >&2; exit 1; fi; exit $$rc

test-js: $(VENV)/.run-installed $(CHROMIUM)
	@command -v npm >/dev/null 2>&1 || { echo "make: the JavaScript tests need Node.js >= 20 and npm" >&2; exit 1; }
	cd sdk/js && npm ci --no-audit --no-fund && npm run build && npm test
	cd examples/react-app && npm ci --no-audit --no-fund && npm run build
	cd sdk/js && npm run test:e2e

bench: $(VENV)/.run-installed
	$(PY) bench/vault.py

clean:
	rm -rf $(VENV) server/*.egg-info

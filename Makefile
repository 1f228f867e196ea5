# One command per job. `make run` and `make test` work on a fresh Debian machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install vendor browser run contests test lint bench clean

## Front-end packages pinned in package-lock.json (npm registry, never a CDN, never committed).
VENDOR := src/cpsync/web/static/vendor
VENDORED := $(VENDOR)/htmx.min.js $(VENDOR)/chart.umd.min.js \
	$(VENDOR)/swagger-ui/swagger-ui-bundle.js $(VENDOR)/swagger-ui/swagger-ui.css

$(STAMP): pyproject.toml | $(VENDORED) browser
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) vendor browser

$(VENDORED) &: package.json package-lock.json
	@command -v npm >/dev/null || { \
		SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
		$$SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y npm; }
	npm ci --no-audit --no-fund
	mkdir -p $(VENDOR)
	cp node_modules/htmx.org/dist/htmx.min.js $(VENDOR)/htmx.min.js
	cp node_modules/chart.js/dist/chart.umd.min.js $(VENDOR)/chart.umd.min.js
	mkdir -p $(VENDOR)/swagger-ui
	cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui.css \
		$(VENDOR)/swagger-ui/

vendor: $(VENDORED)

## Debian's Chromium for the browser tests (Playwright cannot download browsers here).
browser:
	@if [ -x /usr/bin/chromium ]; then \
		echo "chromium already installed"; \
	else \
		SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
		$$SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y chromium; \
	fi

## The main job on the embedded default (SQLite, in-process cache and queue, no servers):
## the web app on http://127.0.0.1:8000, refreshing contests on its schedule.
run: $(STAMP)
	$(BIN)/cpsync serve

## Fetch once and list, without the web app.
contests: $(STAMP)
	-$(BIN)/cpsync fetch
	$(BIN)/cpsync contests

## The whole test suite, in TEST_WORKERS processes (pytest-xdist): most tests wait on real
## servers and subprocesses, so four share a 2-core machine well. TEST_WORKERS=0 runs it in one.
TEST_WORKERS ?= 4
test: $(STAMP)
	$(BIN)/pytest -n $(TEST_WORKERS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/fetch.py
	$(BIN)/python bench/web.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

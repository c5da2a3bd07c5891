# Every target creates .venv and installs worq with its extras on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test test-faults lint typecheck pytest demo bench bench-peers redis-server chromium screenshots clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "worq needs Python 3.11 or newer: set PYTHON=python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,redis,metrics,otel,dashboard]'
	touch $(STAMP)

# The Redis tests start their own private redis-server (and make TLS
# certificates with openssl); install both when missing.
redis-server:
	@command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 && \
		command -v openssl >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq redis-server redis-tools openssl >/dev/null; }

# The dashboard's browser tests drive Debian's Chromium headless through its
# ChromeDriver (nothing downloads a browser); install both when missing.
chromium:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; }

lint: $(STAMP)
	$(BIN)/ruff check src tests examples bench
	$(BIN)/ruff format --check src tests examples bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) redis-server chromium
	$(BIN)/pytest -m "not faults"

# Regenerate the dashboard's screenshots in docs/images (from its browser tests).
screenshots: $(STAMP) redis-server chromium
	WORQ_SCREENSHOTS=1 $(BIN)/pytest tests/test_dashboard_browser.py

test: lint typecheck pytest

# Kill workers, pools, Redis and clients under load; account for every task.
test-faults: $(STAMP) redis-server
	$(BIN)/pytest -m faults -s tests/faults

# examples/mem.py, kept as the manual prints it, logs every worq event at DEBUG
# (tasks.init and main.main call logging.basicConfig); the demo prints just its
# result. Its own process gets the `worq` logger set to WARNING before mem.py
# runs; its worker processes, which run tasks.init afresh, log through structlog
# at warning level, which worq sets up in them from WORQ_LOG_FORMAT and
# WORQ_LOG_LEVEL before calling tasks.init. Warnings and errors still show.
demo: $(STAMP)
	@cd examples && WORQ_LOG_FORMAT=console WORQ_LOG_LEVEL=warning $(abspath $(BIN))/python -c \
		'import logging, runpy; logging.getLogger("worq").setLevel(logging.WARNING); runpy.run_path("mem.py", run_name="__main__")'

bench: $(STAMP) redis-server
	$(BIN)/python bench/redis_roundtrips.py
	$(BIN)/python bench/log_events.py
	$(BIN)/python bench/throughput.py

# worq beside RQ, Dramatiq, Huey, Celery, arq, SAQ and taskiq (bench/peers/run.py),
# in a venv of their own, created with their latest releases on first use.
PEERS_VENV := bench/.peers-venv
PEERS := rq 'dramatiq[redis]' huey 'celery[redis]' arq saq taskiq taskiq-redis

$(PEERS_VENV)/.installed:
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/pip install --quiet --upgrade pip
	$(PEERS_VENV)/bin/pip install --quiet -e '.[redis]' $(PEERS)
	touch $@

bench-peers: $(PEERS_VENV)/.installed redis-server
	$(PEERS_VENV)/bin/python bench/peers/run.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis

# The single entry for humans and CI. `make run` brings the product up; `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

# The suite runs twice: on SQLite (the default) and on PostgreSQL (production's database). The
# PostgreSQL run needs a server that trusts this user at TEST_POSTGRES_URL; pytest-django makes
# and drops its own test database there.
TEST_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/wallboard

.PHONY: run test test-sqlite test-postgres lint format browser bench-freshness bench-fanout bench-soak bench-kpi bench-import bench-reports chaos chaos-tools clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed
	$(PY) -m wallboard.stack

# Browser tests drive Debian's Chromium (Playwright cannot download its own browser here).
browser:
	@test -x /usr/bin/chromium || { \
	  echo "Installing Chromium for the browser tests (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }

test: lint test-sqlite test-postgres

# Two test processes (pytest-xdist), one per core; a test file stays in one process.
PYTEST := $(PY) -m pytest -n 2 --dist loadfile

test-sqlite: $(VENV)/.installed browser
	$(PYTEST)

test-postgres: $(VENV)/.installed browser
	DATABASE_URL=$(TEST_POSTGRES_URL) $(PYTEST)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench-freshness: $(VENV)/.installed
	$(PY) bench/freshness.py

bench-fanout: $(VENV)/.installed
	$(PY) bench/fanout.py

bench-soak: $(VENV)/.installed browser
	$(PY) bench/soak.py

bench-kpi: $(VENV)/.installed
	$(PY) bench/kpi_report.py
	$(PY) bench/kpi_report.py --postgresql $(TEST_POSTGRES_URL)

bench-import: $(VENV)/.installed
	$(PY) bench/cdr_import.py

bench-reports: $(VENV)/.installed browser
	$(PY) bench/reports.py
# Faults on a local production-shaped topology (docs/reliability.md). Its own Redis, PostgreSQL
# and nginx; libfaketime and gcc for the clock step. `make chaos CHAOS_ARGS="--fault pbx-403"`.
CHAOS_ARGS ?=
chaos-tools:
	@missing=""; \
	for pair in redis-server:redis-server nginx:nginx gcc:gcc; do \
	  command -v $${pair%%:*} >/dev/null || missing="$$missing $${pair##*:}"; done; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	test -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 || missing="$$missing faketime"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing$$missing for the chaos run (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

chaos: $(VENV)/.installed chaos-tools
	$(PY) bench/chaos.py $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache

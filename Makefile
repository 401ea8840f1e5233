# Two commands set everything up on a fresh machine: `make demo` and `make test`.
# Both create (or reuse) .venv from pyproject.toml; nothing is installed by hand.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

# PostgreSQL suites run when this is set; CI and these machines have PostgreSQL on 127.0.0.1:5432.
# `make test MIGRATEBOT_TEST_DATABASE_URL=` runs SQLite only (the PostgreSQL cases then say they skipped).
MIGRATEBOT_TEST_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
export MIGRATEBOT_TEST_DATABASE_URL

# 2 cores here: two xdist workers keep both busy without thrashing the sandbox servers.
PYTEST_WORKERS ?= 2

.PHONY: venv demo test lint bench soak clean browser

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/migratebot demo

# tests/demo/test_interactive.py drives `migratebot demo --interactive` in a real headless Chromium
# (Debian's chromium + chromium-driver; Selenium uses both, downloads nothing). Installed here when
# missing and we are root; otherwise the line says how, and that test fails saying the same.
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; \
	  else \
	    echo "make: headless Chromium is missing: sudo apt-get install -y chromium chromium-driver"; \
	  fi; \
	fi

test: $(STAMP) browser
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m bench

soak: $(STAMP)
	$(BIN)/python -m bench.soak

clean:
	rm -rf $(VENV) .migratebot .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info

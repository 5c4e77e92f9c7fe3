# xpbase: the README's commands. Needs only Python 3.11+ (and Node/npm for the
# pinned Supabase CLI that `make test` deploys with); everything else is
# installed into .venv and tools/node_modules by these targets.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip

.PHONY: run bot worker test test-pg15 lint fonts bench bench-replay bench-leaderboard bench-delivery db-start db-stop migrate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e '.[test]'
	touch $@

# Redocly CLI, pinned, for the OpenAPI lint test (tests/service/test_api.py); .tools/ is git-ignored.
REDOCLY_VERSION := 2.77.0
REDOCLY := .tools/redocly/node_modules/.bin/redocly

$(REDOCLY):
	npm i --no-save -E --prefix .tools/redocly @redocly/cli@$(REDOCLY_VERSION)

# The Supabase CLI at the version pinned in tools/package-lock.json (kept out of git).
tools/node_modules/.installed: tools/package.json tools/package-lock.json
	npm ci --prefix tools --no-audit --no-fund
	touch $@

## run: start the embedded Postgres (unless DATABASE_URL is set), migrate, serve on XPBASE_HOST:XPBASE_PORT
run: $(VENV)/.installed-run
	$(BIN)/xpbase serve

## bot: the Discord bot alone (DISCORD_TOKEN in .env); `make run` starts it beside the service
bot: $(VENV)/.installed-run
	$(BIN)/xpbase bot

## worker: a job queue worker alone (deliveries, periodic tasks); `make run` starts one beside the service
worker: $(VENV)/.installed-run
	$(BIN)/xpbase worker

# The rank card's fonts (bot/card_text.py), from Debian: CJK names (WenQuanYi Micro Hei) and colour emoji
# (Noto Color Emoji). The bot never fetches glyphs at run time.
CARD_FONTS := /usr/share/fonts/truetype/wqy/wqy-microhei.ttc /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf
fonts:
	@ls $(CARD_FONTS) >/dev/null 2>&1 || (apt-get update && apt-get install -y --no-install-recommends fonts-wqy-microhei fonts-noto-color-emoji)

# Test processes (pytest-xdist): each starts its own embedded Postgres and template database.
# `auto` is one per CPU core; TEST_WORKERS=0 runs the suite in one process.
TEST_WORKERS ?= auto

## test: the whole suite against a real Postgres that the suite starts itself; the Supabase CLI
## deploys supabase/ too (XPBASE_REQUIRE_SUPABASE_CLI, XPBASE_REQUIRE_BROWSER: those tests fail instead of
## skipping without the CLI, Playwright or chromium)
test: $(VENV)/.installed-test tools/node_modules/.installed $(REDOCLY) fonts
	$(BIN)/ruff check .
	XPBASE_REQUIRE_SUPABASE_CLI=1 XPBASE_REQUIRE_BROWSER=1 $(BIN)/python -m pytest -n $(TEST_WORKERS)

## test-pg15: the suite on Debian's PostgreSQL 15 (what Supabase runs): installs postgresql-15 with apt-get if
## missing, starts a throwaway cluster as the postgres user, runs pytest on it (TESTS=tests/sql for a part)
test-pg15: $(VENV)/.installed-test
	PYTHON=$(BIN)/python tools/test-pg15.sh $(TESTS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## bench: the benchmarks in bench/ (not part of the test suite)
bench: $(VENV)/.installed-test
	$(BIN)/python bench/award_throughput.py

## bench-replay: replay the Stack Exchange dumps in ../shared vs a bare COPY of the same ledger rows
bench-replay: $(VENV)/.installed-test
	$(BIN)/python bench/replay.py

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e '.[test,bench]'
	touch $@

## bench-leaderboard: leaderboard RPCs vs a Redis sorted set, 1,000,000 profiles (needs redis-server)
bench-leaderboard: $(VENV)/.installed-bench
	$(BIN)/python bench/leaderboard.py

## bench-delivery: notifications through the outbox with 1, 2, 4 workers vs a bare loop of the same posts
bench-delivery: $(VENV)/.installed-test
	$(BIN)/python bench/delivery.py

db-start: $(VENV)/.installed-run
	$(BIN)/xpbase db start

db-stop: $(VENV)/.installed-run
	$(BIN)/xpbase db stop

migrate: $(VENV)/.installed-run
	$(BIN)/xpbase migrate

clean:
	rm -rf $(VENV) .pytest_cache tools/node_modules

# Gemini-Vault — the two commands a newcomer needs: `make run` and `make test`.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export FLASK_APP := wsgi

.PHONY: run test test-image soak lint bench css migrate install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

## Apply database migrations (SQLite in instance/ unless DATABASE_URL says otherwise).
migrate: install
	VAULT_BOOTSTRAP=false $(BIN)/flask db upgrade

## Install, migrate and serve on http://localhost:8000 with gunicorn + gevent.
run: migrate
	@echo ""
	@echo "  Gemini-Vault is starting on http://localhost:8000"
	@echo "  Sign up:        curl -X POST http://localhost:8000/auth/users/ -H 'Content-Type: application/json' \\"
	@echo "                    -d '{\"email\": \"you@example.com\", \"password\": \"a long password\"}'"
	@echo "  First admin:    $(BIN)/flask --app wsgi create-admin --email admin@example.com"
	@echo "                  (or set VAULT_ADMIN_EMAIL and VAULT_ADMIN_PASSWORD in .env before starting)"
	@echo "  Upstream keys:  $(BIN)/flask --app wsgi upstream add AIza..."
	@echo ""
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

## Install test dependencies, lint, and run the whole suite, one pytest-xdist worker per core
## (TEST_WORKERS=0 runs it in one process).
TEST_WORKERS ?= auto
test: install-dev
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal

## Build the Dockerfile with podman and run the image (root; part of `make test` too).
test-image: install-dev
	$(BIN)/python -m pytest -m image -rs tests/deploy/test_image_build.py

## Soak: two instances under mixed traffic for SOAK_SECONDS (default 180 here, 45 in `make test`)
## while keys fail, Redis restarts and stalls and PostgreSQL is cut; needs TEST_DATABASE_URL.
SOAK_SECONDS ?= 180
soak: install-dev
	SOAK_SECONDS=$(SOAK_SECONDS) $(BIN)/python -m pytest -m soak tests/soak -p no:cacheprovider -s

## Benchmark: the Vault against a bare Flask/gevent pass-through (the floor) and the fake upstream
## called directly, pinned to their own cores (needs wrk: apt-get install -y wrk). Options via
## BENCH_ARGS, e.g. BENCH_ARGS="--quick" (about two minutes), "--streams-5000", "--rows 1000000"
## (with BENCH_DATABASE_URL=postgresql://…); see bench/run.py.
bench: install-dev
	$(BIN)/python -m bench.run $(BENCH_ARGS)

## Rebuild static/css/app.css with the Tailwind CLI (npm); the built file is committed.
css:
	npm install --no-audit --no-fund
	npm run css

lint: install-dev
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

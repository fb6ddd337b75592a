# Quick start: `make run` starts the platform on the embedded default; `make test` runs the whole suite.
# DEBUG is off unless asked for (percolate_platform/settings.py): `make run` and `make demo` ask for it, and with it
# the development secret key, service token and local master key; the suite uses percolate_platform.settings_dev.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

# The suite runs on the real services of this machine (see scripts/services.sh).
TEST_ENV := DATABASE_URL=$${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test} \
	REDIS_URL=$${TEST_REDIS_URL:-redis://127.0.0.1:6379/0} \
	S3_ENDPOINT_URL=$${TEST_S3_ENDPOINT_URL:-http://127.0.0.1:8333} \
	CELERY_TASK_ALWAYS_EAGER=true DJANGO_DEBUG=true

.PHONY: run demo test lint services clean

$(VENV)/.runtime: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	@touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	@touch $@

run: export DJANGO_DEBUG := true
run: $(VENV)/.runtime
	$(PY) manage.py migrate --noinput
	$(PY) manage.py bootstrap_local
	$(VENV)/bin/honcho start -f Procfile

# Against a running `make run` (in another terminal): the whole story, step by step, then a summary table.
demo: export DJANGO_DEBUG := true
demo: $(VENV)/.runtime
	$(PY) -m demo

services: $(VENV)/.dev
	scripts/services.sh

test: services
	$(TEST_ENV) $(PY) manage.py makemigrations --check --dry-run
	$(TEST_ENV) $(PY) -m pytest --create-db $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

clean:
	rm -rf $(VENV) var

# The two commands: `make run` (the application on SQLite, scheduler in-process)
# and `make test` (the whole suite). Both build the virtual environment first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export FLASK_APP := scheduler

.PHONY: run serve test bench install install-dev clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/activate
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

# Mozilla's ical.js, one of the independent parsers the tests check feeds with (needs npm;
# without it those checks are skipped and say so).
tests/js/node_modules/.installed: tests/js/package.json tests/js/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix tests/js --no-audit --no-fund --silent && touch $@; \
	else echo "npm not found: the ical.js checks will be skipped"; fi

# The pages' translations (translations/*/LC_MESSAGES/messages.po), compiled after the pip installs.
CATALOGS := $(patsubst %.po,%.mo,$(wildcard translations/*/LC_MESSAGES/messages.po))
$(CATALOGS): %.mo: %.po $(VENV)/.installed
	$(BIN)/pybabel compile --statistics -i $< -o $@

install: $(VENV)/.installed $(CATALOGS)
install-dev: $(VENV)/.installed-dev $(CATALOGS) tests/js/node_modules/.installed

## run: create the venv, migrate the SQLite database, load the demo plan once, serve on :5000
run: install
	$(BIN)/flask db upgrade
	$(BIN)/flask seed-demo --if-empty
	$(MAKE) --no-print-directory serve

## serve: serve without migrating or seeding (the database must be ready); one process,
## threads for requests, the scheduler inside it (SCHEDULER_MODE=embedded)
serve: install
	$(BIN)/gunicorn --workers 1 --threads 8 --bind 127.0.0.1:5000 --access-logfile - wsgi:app

## test: the whole suite (PostgreSQL too when TEST_DATABASE_URL is set)
test: install-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## bench: the benchmarks in bench/ (never part of `make test`)
bench: install-dev
	$(BIN)/python -m bench.api $(BENCH_ARGS)
	$(BIN)/python -m bench.feeds $(BENCH_ARGS)
	$(BIN)/python -m bench.reminders $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache

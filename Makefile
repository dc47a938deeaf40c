# Everything runs from the project's virtual environment, created on first use and
# re-installed whenever pyproject.toml or requirements.lock changes.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PIP := $(BIN)/python -m pip --disable-pip-version-check

.DEFAULT_GOAL := help
.PHONY: help install run test chaos lint format lock bench

help:
	@echo "make run [DEMO=1]  PostgreSQL, Temporal + UI, worker and API on this machine"
	@echo "make test          lint, type-check and the whole test suite (TEST_WORKERS=auto)"
	@echo "make chaos         200 bookings while worker, Temporal and DB connections break"
	@echo "make bench         benchmarks on a fresh local stack; results in bench/results/"
	@echo "                   (SCENARIOS=\"floor search\" ROUNDS=5 QUICK=1 to narrow it)"
	@echo "make lint          ruff check, ruff format --check, mypy --strict"
	@echo "make format        ruff format and autofix"
	@echo "make install       create .venv and install the project with dev tools"
	@echo "make lock          re-pin requirements.lock from the current .venv"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# caldav needs niquests, whose urllib3-future otherwise replaces urllib3 itself on every
# interpreter start (breaking requests-based tools); built from source with
# URLLIB3_NO_OVERRIDE it installs beside urllib3 as urllib3_future, as niquests expects.
$(STAMP): pyproject.toml requirements.lock | $(BIN)/python
	URLLIB3_NO_OVERRIDE=1 $(PIP) install --quiet --no-binary urllib3-future \
		-c requirements.lock -e '.[dev]'
	@touch $@

install: $(STAMP)

run: $(STAMP)
	$(BIN)/booking dev $(if $(DEMO),--demo)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict .

# One pytest worker per core (TEST_WORKERS=0 runs the tests in this process); each worker
# starts its own PostgreSQL and Temporal servers. Whole files go to one worker, so a
# module's fixtures are built once. On a server named by BOOKING_TEST_DATABASE_URL the
# workers would share it, and some tests read server-wide state (the event feed's lag
# counts every database's open transactions): one process there.
TEST_WORKERS ?= $(if $(BOOKING_TEST_DATABASE_URL),0,auto)

test: lint
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

# Also part of `make test`; on its own it shows the faults and answers as they happen.
chaos: $(STAMP)
	$(BIN)/pytest tests/chaos -o log_cli=true --log-cli-level=WARNING

# Starts its own PostgreSQL, Temporal and API (or uses the ones named by
# BOOKING_BENCH_API_URL, BOOKING_DATABASE_URL, BOOKING_TEMPORAL_ADDRESS).
bench: $(STAMP)
	$(BIN)/python -m bench $(SCENARIOS) $(if $(ROUNDS),--rounds $(ROUNDS)) $(if $(QUICK),--quick)

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Pins every installed distribution except the project itself.
lock: $(STAMP)
	{ echo "# Pinned versions for 'pip install -c requirements.lock -e .[dev]' (make lock)."; \
	  $(PIP) freeze --exclude-editable; } > requirements.lock.tmp
	mv requirements.lock.tmp requirements.lock
	@touch $(STAMP)

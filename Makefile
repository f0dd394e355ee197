# The two commands a newcomer types: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# pytest-xdist workers for `make test` (TEST_WORKERS=0 runs the suite in one process).
TEST_WORKERS ?= 2

.PHONY: help install run test test-fast soak fuzz proto lint bench postgres clean

help:
	@echo "make run    - install into .venv and start 'gater dev' on 127.0.0.1:50051"
	@echo "make test   - install test needs, start PostgreSQL, run the whole suite"
	@echo "make soak   - the long tests (marked slow) at full size; make test runs some of them smaller"
	@echo "make fuzz   - the fuzz suite's long mode (GATER_FUZZ_EXAMPLES=300 per pass; docs/security.md)"
	@echo "make proto  - regenerate generated/ from proto/"
	@echo "make lint   - ruff"
	@echo "make bench  - benchmarks (figures go in docs/BENCHMARKS.md)"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test]'
	@touch $@

install: $(STAMP)

run: install
	$(BIN)/gater dev

# PostgreSQL: Debian's cluster, installed and started if needed (scripts/postgres.sh).
postgres:
	@bash scripts/postgres.sh

test: install postgres
	GATER_TEST_POSTGRES_DSN=$${GATER_TEST_POSTGRES_DSN:-postgresql:///gater_test?host=/var/run/postgresql} \
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

test-fast: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -n $(TEST_WORKERS) -m "not slow and not postgres" $(PYTEST_ARGS)

# The tests marked slow, at the sizes tests/helpers.soak gives under GATER_SOAK=1 (1,000 stores,
# 10,000 appends in one session); `make test` runs the same tests with smaller sizes.
soak: install postgres
	GATER_SOAK=1 \
	GATER_TEST_POSTGRES_DSN=$${GATER_TEST_POSTGRES_DSN:-postgresql:///gater_test?host=/var/run/postgresql} \
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -n $(TEST_WORKERS) -m slow $(PYTEST_ARGS)

# The fuzz suite's long mode: fresh draws from a printed seed (GATER_FUZZ_SEED=N repeats a run),
# GATER_FUZZ_EXAMPLES per pass. `make test` runs the same suite bounded and derandomized.
fuzz: install postgres
	GATER_FUZZ_EXAMPLES=$${GATER_FUZZ_EXAMPLES:-300} \
	GATER_TEST_POSTGRES_DSN=$${GATER_TEST_POSTGRES_DSN:-postgresql:///gater_test?host=/var/run/postgresql} \
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q -s -p no:cacheprovider tests/fuzz $(PYTEST_ARGS)

# grpcio-tools comes with the "proto" extra (the test extra includes it); nothing else needs it.
proto: install
	@bash scripts/gen_proto.sh $(BIN)/python generated

lint: install
	$(BIN)/ruff check gater tests bench

bench: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) data .pytest_cache

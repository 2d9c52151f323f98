# The two commands of the README do all set-up on a fresh machine:
#   make demo   - local Kafka + PostgreSQL, sample Debezium events, the sink, the rows
#   make test   - lint, type checks and the whole test suite against real servers
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The decoder's hot path compiled with mypyc (setup.py; README, Performance): rebuilt in
# place when one of its sources changes, so a test never runs a stale compiled module.
# Bootstrap's install compiles too: the check skips a second build of a fresh one (the
# package imports its .py files instead of a build older than them).
COMPILED := $(VENV)/.compiled
HOT_SOURCES := setup.py sink/errors.py sink/records.py $(wildcard sink/decode/*.py) \
	$(addprefix sink/postgres/,dates.py jsonb.py plan.py reduce.py rows.py \
	schema_types.py types.py)
PURE_WRITER_TESTS := $(addprefix tests/postgres/,test_reduce.py test_names.py test_dates_text.py \
	test_ids.py)
FRESH_BUILD := import sys, sink.decode.extjson as m; sys.exit(not m.__file__.endswith(".so"))

.PHONY: demo test lint unit integration crash-campaign chaos toxiproxy validators stack-up \
	stack-down clean bench build decode-pure

$(STAMP): pyproject.toml setup.py
	bash scripts/bootstrap.sh
	touch $(STAMP)

$(COMPILED): $(HOT_SOURCES) | $(STAMP)
	@$(BIN)/python -c '$(FRESH_BUILD)' 2>/dev/null || { \
	  echo "build: compiling the decoder (mypyc; WARP_NO_MYPYC=1 for pure Python)"; \
	  $(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .; }
	touch $(COMPILED)

build: $(COMPILED)

demo: $(COMPILED)
	$(BIN)/warp-sink demo

test: $(COMPILED) lint toxiproxy validators
	$(BIN)/python -m pytest -q -ra
	$(MAKE) --no-print-directory decode-pure

# The compiled modules' tests that need no server once more on the pure-Python modules (the
# fallback without a compiler): the decoder's, and the writer's pure parts'.
decode-pure: $(STAMP)
	WARP_NO_MYPYC=1 $(BIN)/python -m pytest -q tests/decode $(PURE_WRITER_TESTS)

lint: $(STAMP)
	$(BIN)/ruff check sink tests bench
	$(BIN)/mypy sink

unit: $(COMPILED)
	$(BIN)/python -m pytest -q -m "not integration"

integration: $(COMPILED)
	$(BIN)/python -m pytest -q -m integration

crash-campaign: $(COMPILED)
	WARP_CRASH_TRIALS=$${WARP_CRASH_TRIALS:-50} $(BIN)/python -m pytest -q -s -m slow tests/e2e/test_crash_campaign.py

# The fault injector of the chaos tests: Toxiproxy built once by `go install` of a pinned
# version into ~/.cache/cartridge-warp (~30-45 s cold, then a file check). Without Go the
# chaos tests skip and say why.
toxiproxy:
	@bash scripts/install-toxiproxy.sh --optional >/dev/null

# The deploy files' validators (tests/deploy): promtool from Debian's prometheus package (as
# root), kustomize by `go install` of a pinned version into ~/.cache/cartridge-warp (~3 min
# cold, then a file check). A validator that cannot be had here skips its tests, saying why.
validators:
	@bash scripts/install-validators.sh --optional

# Network faults (Toxiproxy) and SIGKILLs against the real sink: CHAOS_TRIALS (default 50)
# trials of ~20 s; the summary is printed at the end (README, Tests).
chaos: $(COMPILED) toxiproxy
	CHAOS_TRIALS=$${CHAOS_TRIALS:-50} $(BIN)/python -m pytest -q -s -ra tests/chaos/test_chaos.py

# Throughput, latency and profiles against ceilings and peers (bench/README.md); ~30 min,
# its own stack in .warp/bench-stack. Take the figures on a quiet machine.
bench: $(COMPILED)
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python bench/run.py --avro --readme $(BENCH_ARGS)

stack-up: $(COMPILED)
	$(BIN)/warp-sink stack up

stack-down: $(COMPILED)
	$(BIN)/warp-sink stack down

clean:
	rm -rf $(VENV) .warp .pytest_cache .mypy_cache .ruff_cache

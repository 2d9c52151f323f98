# The two commands of the README do all set-up on a fresh machine:
#   make demo   - local Kafka + PostgreSQL, sample Debezium events, the sink, the rows
#   make test   - lint, type checks and the whole test suite against real servers
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint unit integration crash-campaign chaos toxiproxy validators stack-up stack-down clean bench

$(STAMP): pyproject.toml
	bash scripts/bootstrap.sh
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/warp-sink demo

test: $(STAMP) lint toxiproxy validators
	$(BIN)/python -m pytest -q -ra

lint: $(STAMP)
	$(BIN)/ruff check sink tests bench
	$(BIN)/mypy sink

unit: $(STAMP)
	$(BIN)/python -m pytest -q -m "not integration"

integration: $(STAMP)
	$(BIN)/python -m pytest -q -m integration

crash-campaign: $(STAMP)
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
chaos: $(STAMP) toxiproxy
	CHAOS_TRIALS=$${CHAOS_TRIALS:-50} $(BIN)/python -m pytest -q -s -ra tests/chaos/test_chaos.py

# Throughput, latency and profiles against ceilings and peers (bench/README.md); ~30 min,
# its own stack in .warp/bench-stack. Take the figures on a quiet machine.
bench: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python bench/run.py --avro --readme $(BENCH_ARGS)

stack-up: $(STAMP)
	$(BIN)/warp-sink stack up

stack-down: $(STAMP)
	$(BIN)/warp-sink stack down

clean:
	rm -rf $(VENV) .warp .pytest_cache .mypy_cache .ruff_cache

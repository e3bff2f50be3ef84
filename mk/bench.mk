# `make bench`: start DynamoDB Local and two API servers on free ports, run the load
# scenarios, and rewrite docs/benchmarks.md with its plots. Smaller runs, for example:
#   make bench BENCH_MESSAGES=2000 BENCH_LATENCY_SECONDS=10 BENCH_ISPBS=10
BENCH_MESSAGES ?= 10000
BENCH_RATE ?= 20
BENCH_LATENCY_SECONDS ?= 30
BENCH_ISPBS ?= 50
BENCH_IDLE_SECONDS ?= 20
BENCH_SCALE_RATE ?= 10
BENCH_SCALE_SECONDS ?= 10
BENCH_ARGS ?=

.PHONY: bench bench-install

$(VENV)/.bench-installed: $(VENV)/.installed requirements-bench.txt
	$(PY) -m pip install --quiet -r requirements-bench.txt
	@touch $@

bench-install: install $(VENV)/.bench-installed

bench: bench-install ## Run the load benchmark on a private stack; rewrites docs/benchmarks.md
	@command -v java >/dev/null || { echo "error: java was not found: DynamoDB Local needs Java 17 or newer" >&2; exit 1; }
	$(PY) -m bench \
		--messages $(BENCH_MESSAGES) --rate $(BENCH_RATE) \
		--latency-seconds $(BENCH_LATENCY_SECONDS) --ispbs $(BENCH_ISPBS) \
		--idle-seconds $(BENCH_IDLE_SECONDS) --scale-rate $(BENCH_SCALE_RATE) \
		--scale-seconds $(BENCH_SCALE_SECONDS) \
		--json docs/benchmarks.json --docs docs/benchmarks.md $(BENCH_ARGS)

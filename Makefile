# Benchmarks (bench/README.md). DATABASE_URL points at PostgreSQL, e.g.
#   make bench DATABASE_URL='postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable'
# SIZE is the largest slot count (10k, 100k, 1m, …); BENCH_FLAGS adds flags
# (e.g. BENCH_FLAGS=-10m for the optional 10M scaling step).

SIZE ?= 1m
BENCH_FLAGS ?=

.PHONY: bench bench-smoke

# The full suite; records its figures in bench/README.md and bench/scaling.png.
bench:
	bench/run.sh -size $(SIZE) -readme bench/README.md -chart bench/scaling.png $(BENCH_FLAGS)

# Tiny sizes in under a minute; fails on errors (never on timing). CI runs it.
bench-smoke:
	bench/run.sh -smoke $(BENCH_FLAGS)

# The two commands a new user needs (see README.md).
.PHONY: run test bench

run:
	@bash scripts/run.sh

test:
	@bash scripts/test.sh

# Not a set-up command: the read API benchmark (see README.md, Benchmarks).
bench:
	@bash scripts/bench.sh

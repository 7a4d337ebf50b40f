# The two commands a newcomer needs; scripts/ does the work.
.PHONY: run test setup bench

run:    ## set up, then start the server on the embedded SQLite database
	./scripts/run.sh

test:   ## set up, then run lint, type checks, import rules and the whole test suite
	./scripts/test.sh

setup:
	./scripts/setup.sh dev

bench:  ## side-by-side benchmarks against Prefect 3.6.29
	./scripts/setup.sh dev && ./scripts/setup-compat.sh && .venv/bin/python benchmarks/run.py

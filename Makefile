# The two commands a newcomer needs; scripts/ does the work.
.PHONY: run test setup bench

run:    ## set up, run the example flow on the embedded database, then serve it (API + docs)
	./scripts/run.sh

test:   ## set up, then run lint, type checks, import rules and the whole test suite
	./scripts/test.sh

setup:
	./scripts/setup.sh dev

bench:  ## side-by-side benchmarks against Prefect 3.6.29
	./scripts/setup.sh dev && ./scripts/setup-compat.sh && .venv/bin/python benchmarks/run.py

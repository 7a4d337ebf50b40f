#!/usr/bin/env bash
# Set up everything the tests need, run the gates (ruff, mypy, import-linter), then pytest.
# Under CI=true the PostgreSQL tier is required; elsewhere it is skipped with a message if absent.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh dev
./scripts/setup-compat.sh
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff"; ruff check src tests benchmarks; ruff format --check src tests benchmarks
echo "== mypy"; mypy
echo "== import-linter"; lint-imports
echo "== pytest"
exec python -m pytest "$@"

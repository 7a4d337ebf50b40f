#!/usr/bin/env bash
# The main job: set up, then serve the embedded SQLite database with the API (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export FLOWPLANE_HOME="${FLOWPLANE_HOME:-$HOME/.flowplane}"
HOST="${FLOWPLANE_SERVER_HOST:-127.0.0.1}"
PORT="${FLOWPLANE_SERVER_PORT:-4200}"
echo "flowplane $(.venv/bin/flowplane version --short) - database: ${FLOWPLANE_DATABASE_URL:-$FLOWPLANE_HOME/flowplane.db}"
echo
echo "  API:       http://$HOST:$PORT/api"
echo "  API docs:  http://$HOST:$PORT/docs"
echo "  Point Prefect 3 at it:  export PREFECT_API_URL=http://$HOST:$PORT/api"
echo "  See runs:  .venv/bin/flowplane flow-run ls   (with FLOWPLANE_API_URL=http://$HOST:$PORT/api)"
echo
exec .venv/bin/flowplane server start --host "$HOST" --port "$PORT"

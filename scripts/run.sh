#!/usr/bin/env bash
# The main job: set up, run the example flow on the embedded database, then serve that database
# with the API (Ctrl-C stops it). The run made here is visible through the server.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export FLOWPLANE_HOME="${FLOWPLANE_HOME:-$HOME/.flowplane}"
# The example run goes to the database this script serves, not to some other server.
unset FLOWPLANE_API_URL
HOST="${FLOWPLANE_SERVER_HOST:-127.0.0.1}"
PORT="${FLOWPLANE_SERVER_PORT:-4200}"
FP=.venv/bin/flowplane
DB="${FLOWPLANE_DATABASE_URL:-$FLOWPLANE_HOME/flowplane.db}"

echo "flowplane $($FP version --short) - database: $DB"
echo
echo "== 1. Run the example flow here, recorded in that database (no server needed)"
echo "   \$ flowplane run -p examples/hello_flowplane.py"
echo
if ! $FP run -p examples/hello_flowplane.py; then
  echo
  echo "(the example flow did not complete; starting the server anyway)"
fi
echo
echo "== 2. See what was recorded"
echo "   \$ flowplane flow-run ls --limit 5"
$FP flow-run ls --limit 5
echo
echo "== 3. Serve the same database"
echo "  API:       http://$HOST:$PORT/api"
echo "  API docs:  http://$HOST:$PORT/docs"
echo "  See runs:  FLOWPLANE_API_URL=http://$HOST:$PORT/api .venv/bin/flowplane flow-run ls"
echo "  Run flows against it:  FLOWPLANE_API_URL=http://$HOST:$PORT/api .venv/bin/flowplane run -p examples/hello_flowplane.py"
echo "  Point Prefect 3 at it: export PREFECT_API_URL=http://$HOST:$PORT/api"
echo
exec $FP server start --host "$HOST" --port "$PORT"

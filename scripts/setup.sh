#!/usr/bin/env bash
# Create .venv and install flowplane into it (editable), with dev tools when asked: setup.sh [dev]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
extra=""
[ "${1:-}" = "dev" ] && extra="[dev]"
stamp=".venv/.installed${extra}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extra}"
  touch "$stamp"
fi
# Byte-compile the package as an installed wheel would be: with PYTHONDONTWRITEBYTECODE set
# (as on CI machines), an editable install would otherwise recompile every module in every
# new process. compileall skips what is up to date.
.venv/bin/python -m compileall -q src >/dev/null

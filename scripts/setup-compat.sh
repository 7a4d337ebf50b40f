#!/usr/bin/env bash
# Create .venv-compat with the real Prefect client (never a dependency of flowplane itself).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV=.venv-compat
if [ ! -f "$VENV/.installed" ]; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    "prefect==3.6.29" "fastapi<0.120" "importlib-metadata" "sqlalchemy<2.1"
  touch "$VENV/.installed"
fi

#!/usr/bin/env bash
# Set up dcc in ./.venv from this repository's own files (idempotent, offline-friendly).
#
# torch is pinned to 2.13.0 for the install step because that CPU build is what this
# project's machines carry locally; any torch >= 2.4 works for users elsewhere
# (pyproject's `models` extra says so).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[dev,models,ray,remote]"

#!/usr/bin/env bash
# Lint and run the whole test suite (real Mosquitto, InfluxDB and simulators). Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest "$@"

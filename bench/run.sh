#!/usr/bin/env bash
# The benchmark suite (bench/README.md): `bench/run.sh [--profile smoke|quick|full] [...]`.
# Prints a table and writes the figures as JSON to bench/results/; nothing is asserted.
# The older single-purpose scripts (bench/bench_*.py, bench/energy_books.py) run on their own.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m bench "$@"

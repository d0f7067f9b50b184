#!/usr/bin/env bash
# Run every benchmark with its defaults and print the figures (nothing is asserted).
set -euo pipefail
cd "$(dirname "$0")/.."
for bench in bench/bench_*.py; do
    .venv/bin/python "$bench"
done

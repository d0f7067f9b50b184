#!/usr/bin/env bash
# Run the demo plant on simulators, end to end, API up (Ctrl-C to stop). Extra args go to `ferrogate demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/ferrogate demo "$@"

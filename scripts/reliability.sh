#!/usr/bin/env bash
# The reliability suite (tests/reliability/) in its long form: the soak runs 72 h of plant time
# (about 18 minutes at 240x; three times the books' 24 h window) instead of CI's 5 h and prints the
# RSS of each process per plant hour; every test prints its figures. Extra args go to pytest (e.g.
# -k soak). FERROGATE_SOAK_SEED picks another fault script (default 14), FERROGATE_SOAK_HOURS another
# length, FERROGATE_SOAK_TRACEMALLOC=1 the Python allocations that grew after the first 24 h.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
export FERROGATE_RELIABILITY_LONG=1
exec .venv/bin/python -m pytest tests/reliability -s -p no:cacheprovider "$@"

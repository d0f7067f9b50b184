#!/usr/bin/env bash
# The reliability suite (tests/reliability/) in its long form: the soak runs 72 h of plant time
# (about 18 minutes at 240x; three times the books' 24 h window) instead of CI's 5 h, prints the RSS
# of each process per plant hour and per 6 h block, and fails if its own process grows by more than
# its stated bound per plant hour after start-up (tests/reliability/test_soak.py); every test prints
# its figures. Extra args go to pytest (e.g. -k soak). FERROGATE_SOAK_SEED picks another fault script
# (default 14), FERROGATE_SOAK_HOURS another length. FERROGATE_SOAK_TRACEMALLOC=1 hunts a leak (what
# grew, by component and line): it slows the process so much that on a busy box the books fall
# behind, so pair it with a short FERROGATE_SOAK_HOURS; the memory bound is then not asserted.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
export FERROGATE_RELIABILITY_LONG=1
exec .venv/bin/python -m pytest tests/reliability -s -p no:cacheprovider "$@"

#!/usr/bin/env bash
# The reliability suite (tests/reliability/) in its long form: the soak runs 24 h of plant time
# (about 6 minutes at 240x) instead of CI's 5 h, and every test prints its figures. Extra args go to
# pytest (e.g. -k soak). FERROGATE_SOAK_SEED picks another fault script (default 14).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
export FERROGATE_RELIABILITY_LONG=1
exec .venv/bin/python -m pytest tests/reliability -s -p no:cacheprovider "$@"

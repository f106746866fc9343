#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh machine, then run it (lint + pytest).
# Usage: scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-redis.sh
scripts/ensure-espeak.sh
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'

.venv/bin/ruff check .
# Two test processes (PYTEST_WORKERS to change it; 0 runs them in this one): most of the suite's
# time is end-to-end scenarios waiting on timers, which overlap well; each file stays in one
# process, so its gateways and simulators start once.
exec .venv/bin/python -m pytest -n "${PYTEST_WORKERS:-2}" --dist loadfile "$@"

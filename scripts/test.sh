#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh machine, then run it (lint + pytest).
# Usage: scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-redis.sh
# The simulator speaks a caller's words into recordings with espeak-ng (voicemail tests).
if ! command -v espeak-ng >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng) \
        >/dev/null
fi
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'

.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"

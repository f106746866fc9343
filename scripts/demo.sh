#!/usr/bin/env bash
# Set up the gateway on a fresh machine and run its demo: the seven examples of Plivo's
# <Conference> documentation, end to end, on loopback (example app, gateway, Twilio simulator).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
exec .venv/bin/gateway demo "$@"

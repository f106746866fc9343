#!/usr/bin/env bash
# Set up the gateway on a fresh machine and run its demo: the seven examples of Plivo's
# <Conference> documentation and an IVR story (menu, room, voicemail with transcription), end to
# end, on loopback (example app, gateway, Twilio simulator).
set -euo pipefail
cd "$(dirname "$0")/.."

# The simulator speaks the IVR story's voicemail with espeak-ng (a system package); without it
# the recording holds a speech-like signal and the demo says so.
if ! command -v espeak-ng >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng) \
        >/dev/null 2>&1 || echo "demo: espeak-ng could not be installed; going on without it" >&2
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
exec .venv/bin/gateway demo "$@"

#!/usr/bin/env bash
# Make sure `espeak-ng` is on PATH for the test suite, installing it with apt-get when missing.
#
# The simulator speaks the words a scenario's caller says into a <Record>ing's file with it, so
# that the voicemail tests transcribe real speech. Idempotent. Exits 0 when espeak-ng is
# available, non-zero (with a reason) otherwise.
set -euo pipefail
source "$(dirname "$0")/lib/apt.sh"

if command -v espeak-ng >/dev/null 2>&1; then
    exit 0
fi
apt_prepare ensure-espeak espeak-ng "install espeak-ng by other means"
apt_install espeak-ng
require_on_path ensure-espeak espeak-ng

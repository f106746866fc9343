#!/usr/bin/env bash
# Make sure `espeak-ng` is on PATH for the test suite, installing it with apt-get when missing.
#
# The simulator speaks the words a scenario's caller says into a <Record>ing's file with it, so
# that the voicemail tests transcribe real speech. Idempotent. Exits 0 when espeak-ng is
# available, non-zero (with a reason) otherwise.
set -euo pipefail

if command -v espeak-ng >/dev/null 2>&1; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-espeak: espeak-ng is missing and apt-get is not available;" \
         "install espeak-ng by other means" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "ensure-espeak: espeak-ng is missing and installing it needs root (or sudo)" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
install() {
    $SUDO apt-get install -y --no-install-recommends espeak-ng
}
# The package lists may be absent (fresh container) or stale: update once, then retry.
if ! install; then
    $SUDO apt-get update
    install
fi

if ! command -v espeak-ng >/dev/null 2>&1; then
    echo "ensure-espeak: apt-get finished but espeak-ng is still not on PATH" >&2
    exit 1
fi

#!/usr/bin/env bash
# Make sure `redis-server` is on PATH for the test suite, installing it with apt-get when missing.
#
# Idempotent. The tests start their own redis-server on a free loopback port, so a system service
# that the package may have started is stopped and disabled again: it would only hold port 6379
# and memory. Exits 0 when redis-server is available, non-zero (with a reason) otherwise.
set -euo pipefail
source "$(dirname "$0")/lib/apt.sh"

if command -v redis-server >/dev/null 2>&1; then
    exit 0
fi

apt_prepare ensure-redis redis-server "install redis-server (Redis >= 5) by other means"

# Keep the package's maintainer scripts from starting the service where policy-rc.d is honoured.
POLICY=/usr/sbin/policy-rc.d
CREATED_POLICY=""
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
    $SUDO chmod 755 "$POLICY"
    CREATED_POLICY=1
fi
cleanup() {
    if [ -n "$CREATED_POLICY" ]; then
        $SUDO rm -f "$POLICY"
    fi
}
trap cleanup EXIT

apt_install redis-server

# If a service got started anyway (systemd, or an init script ignoring policy-rc.d), stop it.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $SUDO systemctl stop redis-server >/dev/null 2>&1 || true
    $SUDO systemctl disable redis-server >/dev/null 2>&1 || true
elif command -v service >/dev/null 2>&1; then
    $SUDO service redis-server stop >/dev/null 2>&1 || true
fi
if [ -x /etc/init.d/redis-server ] && command -v update-rc.d >/dev/null 2>&1; then
    $SUDO update-rc.d redis-server disable >/dev/null 2>&1 || true
fi

require_on_path ensure-redis redis-server

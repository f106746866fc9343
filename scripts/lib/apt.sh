# Shared by the scripts that install a system package the test suite needs (sourced, not run).
#
#   apt_prepare NAME PACKAGE HINT   exit 1 with a reason unless apt-get and root (or sudo) are
#                                   there; sets SUDO for the calls below
#   apt_install PACKAGE             apt-get install, updating the package lists once if needed
#   require_on_path NAME COMMAND    exit 1 with a reason unless COMMAND is now on PATH

apt_prepare() {
    local name=$1 package=$2 hint=$3
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "$name: $package is missing and apt-get is not available; $hint" >&2
        exit 1
    fi
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            SUDO="sudo"
        else
            echo "$name: $package is missing and installing it needs root (or sudo)" >&2
            exit 1
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive
}

apt_install() {
    # The package lists may be absent (fresh container) or stale: update once, then retry.
    if ! $SUDO apt-get install -y --no-install-recommends "$1"; then
        $SUDO apt-get update
        $SUDO apt-get install -y --no-install-recommends "$1"
    fi
}

require_on_path() {
    if ! command -v "$2" >/dev/null 2>&1; then
        echo "$1: apt-get finished but $2 is still not on PATH" >&2
        exit 1
    fi
}

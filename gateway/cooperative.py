"""Whether this process runs under gevent's monkey-patching (gunicorn's gevent workers).

There a call that blocks inside C code (SQLite's busy wait, a DNS look-up the socket watchdog
cannot cut) stalls every greenlet of the process, so the modules that make such calls choose a
cooperative way when this says so.
"""

from __future__ import annotations

import sys


def greenlets_share_this_thread() -> bool:
    """True under gevent's monkey-patching, where a blocking C call stalls every greenlet."""
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey and monkey.is_module_patched("threading"))

"""`gateway worker` with every huey thread under cProfile, for the benchmarks.

Run as `python -m benchmarks.profile_worker` with the gateway's environment and
$BENCH_PROFILE_DIR set. Each worker and scheduler thread of the huey consumer profiles its own
loop (dequeueing and polling included, so the queue's own cost shows) on its thread's CPU
clock; when the consumer stops (SIGTERM or SIGINT), the merged profile is written to
$BENCH_PROFILE_DIR/jobworker-<pid>.prof.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import sys
import threading
import time
from pathlib import Path

from huey import consumer

_profiles: list[cProfile.Profile] = []
_lock = threading.Lock()
_local = threading.local()


def _profiled(loop):
    def run(self, now=None):
        profiler = getattr(_local, "profiler", None)
        if profiler is None:
            profiler = _local.profiler = cProfile.Profile(time.thread_time)
            with _lock:
                _profiles.append(profiler)
        profiler.enable()
        try:
            return loop(self, now)
        finally:
            profiler.disable()
    return run


def main() -> int:
    consumer.Worker.loop = _profiled(consumer.Worker.loop)
    consumer.Scheduler.loop = _profiled(consumer.Scheduler.loop)
    from gateway.worker import worker_main

    try:
        return worker_main([])
    finally:
        with _lock:
            profiles = [p for p in _profiles if p.getstats()]
        if profiles:
            directory = Path(os.environ.get("BENCH_PROFILE_DIR", "."))
            directory.mkdir(parents=True, exist_ok=True)
            pstats.Stats(*profiles).dump_stats(str(directory / f"jobworker-{os.getpid()}.prof"))


if __name__ == "__main__":
    sys.exit(main())

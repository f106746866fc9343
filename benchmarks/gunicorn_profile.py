"""gunicorn config hook: profile every request a worker serves, for the benchmarks.

Each worker wraps its WSGI app so that every request runs under a cProfile profiler of its own
thread (gthread workers serve requests on several threads; one profiler per thread keeps the
figures sound). The clock is the thread's CPU time ($BENCH_PROFILE_CLOCK=cpu, the default): with
8 threads sharing the GIL, wall time would charge a thread's wait for the GIL to whatever it
happened to be running. `wall` shows waiting too (SQLite locks, the app's answer). When the
worker exits (SIGTERM to gunicorn), its threads' profiles are merged and written to
$BENCH_PROFILE_DIR/worker-<pid>.prof, readable with `pstats`.
"""

from __future__ import annotations

import cProfile
import os
import threading
import time
from pathlib import Path

_profiles: list[cProfile.Profile] = []
_lock = threading.Lock()
_local = threading.local()


def _profiler() -> cProfile.Profile:
    profiler = getattr(_local, "profiler", None)
    if profiler is None:
        clock = time.thread_time if os.environ.get("BENCH_PROFILE_CLOCK", "cpu") == "cpu" else (
            time.perf_counter)
        profiler = _local.profiler = cProfile.Profile(clock)
        with _lock:
            _profiles.append(profiler)
    return profiler


def _profiling(app):
    def wsgi(environ, start_response):
        profiler = _profiler()
        profiler.enable()
        try:
            return list(app(environ, start_response))  # the body is produced inside the profile
        finally:
            profiler.disable()
    return wsgi


def post_worker_init(worker) -> None:
    worker.wsgi = _profiling(worker.wsgi)


def worker_exit(server, worker) -> None:
    import pstats

    with _lock:
        profiles = [p for p in _profiles if p.getstats()]
    if not profiles:
        return
    for profile in profiles:
        profile.create_stats()
    stats = pstats.Stats(*profiles)
    directory = Path(os.environ.get("BENCH_PROFILE_DIR", "."))
    directory.mkdir(parents=True, exist_ok=True)
    stats.dump_stats(str(directory / f"worker-{os.getpid()}.prof"))

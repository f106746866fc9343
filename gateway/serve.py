"""`gateway serve`: the production server (gunicorn) and, by default, the job worker and the
side-stream server beside it.

On the embedded default (SQLite) one command runs everything one machine needs: the web app on
PORT, the job worker, and the side-stream WebSocket server (`gateway media`, digitsMatch) on
GATEWAY_MEDIA_PORT (default PORT + 1). With Redis and several machines, run `gateway serve
--web-only` on each web node, `gateway media` where the proxy sends `/twilio/media`, and
`gateway worker` where jobs should run (the Procfile's `web:`, `media:` and `worker:` lines).
`gateway serve` supervises what it starts: gunicorn restarts its own web workers, and a job
worker or side-stream server that dies is started again (see `supervise`).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

from .mappings import check_mappings
from .settings import Settings, SettingsError

# Measured in benchmarks/bench_isolation.py; the README's "Isolation and capacity" says why gevent.
WORKER_CLASSES = ("gevent", "gthread")


def concurrency_flags(args) -> list[str]:
    """gunicorn's flags for the worker class. gevent's worker monkey-patches the standard library
    before it loads the app, so urllib3, redis-py, the deadline watchdog and every lock yield to
    other greenlets while they wait; SQLite calls (C code) do not, and are short."""
    if args.worker_class == "gevent":  # gunicorn's, letting idle connections go when stopping
        return ["--worker-class", "gateway.gunicorn_worker.GeventWorker",
                "--worker-connections", str(args.worker_connections)]
    return ["--worker-class", "gthread", "--threads", str(args.threads)]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gateway serve", description=__doc__.split("\n")[0])
    parser.add_argument("--web-only", action="store_true",
                        help="run gunicorn only (jobs and side streams run elsewhere: "
                        "`gateway worker`, `gateway media`)")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY",
                                                                          "2")),
                        help="gunicorn worker processes (default $WEB_CONCURRENCY or 2)")
    parser.add_argument("--worker-class", choices=WORKER_CLASSES,
                        default=os.environ.get("GATEWAY_WORKER_CLASS", "gevent"),
                        help="gevent (default; $GATEWAY_WORKER_CLASS): one greenlet per "
                        "connection, so slow clients and hanging apps cost no worker; gthread: "
                        "a fixed pool of --threads threads per worker")
    parser.add_argument("--threads", type=int, default=8,
                        help="threads per worker with --worker-class gthread (default 8)")
    parser.add_argument("--worker-connections", type=int, default=1000,
                        help="connections per worker with --worker-class gevent (default 1000)")
    args = parser.parse_args(argv)
    if args.worker_class not in WORKER_CLASSES:  # from the environment: argparse did not check
        print(f"gateway serve: cannot start: GATEWAY_WORKER_CLASS: {args.worker_class!r} is not "
              f"one of {', '.join(WORKER_CLASSES)}", file=sys.stderr)
        return 2
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"gateway serve: cannot start: {exc}", file=sys.stderr)
        return 2
    _, errors = check_mappings(settings.mappings_path)
    if errors:
        for error in errors:
            print(f"gateway serve: cannot start: {error}", file=sys.stderr)
        return 2
    host = f"[{settings.bind_host}]" if ":" in settings.bind_host else settings.bind_host
    web = [sys.executable, "-m", "gunicorn", "--bind", f"{host}:{settings.port}",
           "--no-control-socket",  # gunicorn 27's shared ~/.gunicorn socket: not ours to take
           "--workers", str(args.workers), *concurrency_flags(args),
           "--timeout", "60", "--graceful-timeout", "10",
           # Twilio and load balancers reuse connections; gunicorn's 2 s default closes them
           # under their feet (a request on a just-closed connection fails with a reset).
           "--keep-alive", "75",
           "--access-logfile", "-", "--logger-class", "gateway.access_log.AccessLog",
           "gateway.app:create_app()"]
    prepare_metrics_dir()
    helpers = {} if args.web_only else {
        "job worker": [sys.executable, "-m", "gateway.cli", "worker"],
        "side-stream server": [sys.executable, "-m", "gateway.cli", "media"]}
    return supervise(web, helpers)


RESTART_PAUSE = 1.0  # seconds before a dead helper starts again
CRASH_WINDOW = 10.0  # a helper that ends by itself this soon after its start failed to start...
CRASH_LIMIT = 5  # ...and this many such failures in a row stop the gateway


def supervise(web: list[str], helpers: dict[str, list[str]]) -> int:
    """Run gunicorn and the helpers until SIGTERM/SIGINT or gunicorn's end; returns its code.

    gunicorn restarts its own workers. A helper (the job worker, the side-stream server) that
    dies is started again after RESTART_PAUSE, as a supervisor would, so a crash or a SIGKILL of
    the worker neither stops the web side nor leaves callbacks undelivered: the new worker takes
    over the dead one's jobs at once (`jobs.lease_lapsed`). A helper that keeps exiting by
    itself right after its start (CRASH_LIMIT times in a row, each within CRASH_WINDOW) has a
    fault a restart will not fix: everything stops, and the exit code tells the supervisor
    above. One killed by a signal is always started again.
    """
    web_process = subprocess.Popen(web)
    running = {name: (subprocess.Popen(command), time.monotonic())
               for name, command in helpers.items()}
    crashes = dict.fromkeys(helpers, 0)
    stopping = False

    def everyone() -> list[subprocess.Popen]:
        return [web_process, *(process for process, _ in running.values())]

    def stop(signum, _frame):
        nonlocal stopping
        stopping = True
        for child in everyone():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    def stop_all_and_wait(code: int) -> int:
        stop(signal.SIGTERM, None)
        for child in everyone():
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
        return code

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        try:
            code = web_process.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            pass
        else:  # gunicorn gone (stopped, or its master died): nothing to serve
            return stop_all_and_wait(code)
        if stopping:
            continue  # waiting for gunicorn to finish its requests
        for name, (process, started) in list(running.items()):
            code = process.poll()
            if code is None:
                continue
            # Killed by a signal (SIGKILL, the OOM killer): restart, however often it happens.
            # Ended by itself soon after starting (bad settings, a store it cannot open): count.
            quick = code >= 0 and time.monotonic() - started < CRASH_WINDOW
            crashes[name] = crashes[name] + 1 if quick else 0
            if crashes[name] >= CRASH_LIMIT:
                print(f"gateway serve: the {name} died {crashes[name]} times right after "
                      f"starting (last exit code {code}); stopping", file=sys.stderr,
                      flush=True)
                return stop_all_and_wait(code or 1)
            print(f"gateway serve: the {name} exited with code {code}; starting it again",
                  file=sys.stderr, flush=True)
            time.sleep(RESTART_PAUSE)
            if not stopping:
                running[name] = (subprocess.Popen(helpers[name]), time.monotonic())


def prepare_metrics_dir() -> str:
    """One directory where every process of this server counts its metrics, so that /metrics
    (answered by any gunicorn worker) sums them all: $PROMETHEUS_MULTIPROC_DIR if set, emptied
    of an earlier run's files, else a new temporary directory. Children inherit it."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
    if path:
        os.makedirs(path, exist_ok=True)
        for name in os.listdir(path):
            if name.endswith(".db"):
                os.remove(os.path.join(path, name))
    else:
        path = tempfile.mkdtemp(prefix="gateway-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path

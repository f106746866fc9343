"""`gateway serve`: the production server (gunicorn) and, by default, the job worker and the
side-stream server beside it.

On the embedded default (SQLite) one command runs everything one machine needs: the web app on
PORT, the job worker, and the side-stream WebSocket server (`gateway media`, digitsMatch) on
GATEWAY_MEDIA_PORT (default PORT + 1). With Redis and several machines, run `gateway serve
--web-only` on each web node, `gateway media` where the proxy sends `/twilio/media`, and
`gateway worker` where jobs should run (the Procfile's `web:`, `media:` and `worker:` lines).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile

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
           "--access-logfile", "-", "gateway.app:create_app()"]
    prepare_metrics_dir()
    children = [subprocess.Popen(web)]
    if not args.web_only:
        children.append(subprocess.Popen([sys.executable, "-m", "gateway.cli", "worker"]))
        children.append(subprocess.Popen([sys.executable, "-m", "gateway.cli", "media"]))

    def stop(signum, _frame):
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # If one dies, stop the others: a gateway without its worker would lose callbacks.
    while True:
        for child in children:
            try:
                code = child.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                continue
            stop(signal.SIGTERM, None)
            for other in children:
                other.wait(timeout=30)
            return code


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

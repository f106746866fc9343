"""The processes the benchmarks run on loopback, besides the gateway itself.

- `QuietCustomerApp`: the tests' customer app without its Plivo signature checks (they cost the
  app CPU on gateway requests only, which would tilt a comparison with the unsigned proxy).
- `GunicornServer`: any WSGI app under gunicorn with the gateway's own settings (`GUNICORN_FLAGS`
  mirrors `gateway serve`), output to a log file, stopped by process group.
- `proxy_server()`: the baseline proxy of `proxy_app.py` under those settings (optionally
  profiled).
- `profiled_gateway()`: the gateway's web app under the same settings plus a cProfile hook in
  every worker (`gunicorn_profile.py`), for finding where a request's time goes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.support.customer_app import CustomerApp
from tests.support.gateway_server import GatewayServer, free_port

REPO = Path(__file__).resolve().parent.parent

# Exactly what `gateway serve` gives gunicorn (gateway/serve.py), minus the bind address.
GUNICORN_FLAGS = ("--workers", "2", "--worker-class", "gevent", "--worker-connections", "1000",
                  "--timeout", "60", "--graceful-timeout", "10", "--access-logfile", "-")


class QuietCustomerApp(CustomerApp):
    """The customer app of the end-to-end tests, minus the signature verdicts (see above)."""

    def _verify(self, method, url, form, headers):
        return None, None, None


class GunicornServer:
    """`python -m gunicorn <GUNICORN_FLAGS> <extra> <app>` on a free loopback port."""

    def __init__(self, workdir: Path, app: str, *, env: dict[str, str], extra: tuple[str, ...] = (),
                 name: str = "server", port: int | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}",
                        *GUNICORN_FLAGS, *extra, app]
        self.env = {**env, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
        self.log_path = self.workdir / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> GunicornServer:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.command, env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True,
                                            cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.command} exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:  # not listening yet
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"no /healthz in time:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        """SIGTERM the group: gunicorn stops its workers gracefully (worker_exit hooks run)."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def __enter__(self) -> GunicornServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


PROFILE_CONFIG = str(REPO / "benchmarks" / "gunicorn_profile.py")
# cProfile follows threads, not greenlets: a gevent worker would interleave every request in
# one profile, so the profiled runs (and only they) serve with gthread workers.
PROFILE_FLAGS = ("-c", PROFILE_CONFIG, "--worker-class", "gthread", "--threads", "8")


def proxy_server(workdir: Path, answer_url: str, *, profile_dir: Path | None = None,
                 worker_class: str = "gevent") -> GunicornServer:
    """The baseline proxy; with `profile_dir`, its workers are profiled like the gateway's."""
    env = {**os.environ, "PROXY_ANSWER_URL": answer_url}
    extra: tuple[str, ...] = () if worker_class == "gevent" else (
        "--worker-class", "gthread", "--threads", "8")
    if profile_dir is not None:
        env["BENCH_PROFILE_DIR"] = str(profile_dir)
        extra = PROFILE_FLAGS
    return GunicornServer(workdir, "benchmarks.proxy_app:create_app()", env=env, extra=extra,
                          name="proxy-profiled" if profile_dir else "proxy")


def profiled_gateway(gateway: GatewayServer, profile_dir: Path) -> GunicornServer:
    """The gateway's web app as `gateway serve --web-only` runs it (same environment, settings
    and mappings as `gateway`, on its own port), with every worker profiled into profile_dir."""
    port = free_port()
    env = {**gateway.env, "BENCH_PROFILE_DIR": str(profile_dir), "PORT": str(port),
           "GATEWAY_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    return GunicornServer(gateway.workdir, "gateway.app:create_app()", env=env, port=port,
                          extra=PROFILE_FLAGS,
                          name="gateway-profiled")

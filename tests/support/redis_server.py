"""A real `redis-server` for tests, on a free loopback port in a temporary directory.

`RedisServer` starts, stops (gracefully or with SIGKILL, as a crash) and restarts one server on
the same port with the same data directory, so a test can take Redis away mid-conference and
bring it back. Persistence is off unless asked for (`appendonly=True`, fsync on every write, so
a SIGKILL loses nothing that was acknowledged).

Pytest fixtures, usable from any test package once this module is imported by a conftest
(`from tests.support.redis_server import redis_server, redis_url, redis_server_factory`)
or registered as a plugin (`pytest_plugins = ["tests.support.redis_server"]` in the root one):

- `redis_server` (session): one shared server for the whole run. Do not stop it.
- `redis_url` (function): that server's URL, flushed first so each test starts empty.
- `redis_server_factory` (function): `redis_server_factory(appendonly=...)` starts a private
  server the test may stop, kill and restart; every one is torn down after the test.

Without `redis-server` on PATH, starting fails with `RedisServerMissing`, which names
`scripts/ensure-redis.sh`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

START_TIMEOUT = 15.0  # seconds; generous for a loaded 2-core machine
STOP_TIMEOUT = 10.0
_ENSURE_SCRIPT = "scripts/ensure-redis.sh"


class RedisServerMissing(RuntimeError):
    """`redis-server` is not installed; the message says how to install it."""


class RedisServerError(RuntimeError):
    """The server did not start or stop as asked; the message carries its log's tail."""


class RedisServer:
    """One `redis-server` process bound to 127.0.0.1, owned by the test that started it."""

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        appendonly: bool = False,
        password: str | None = None,
        port: int | None = None,
    ):
        self._own_directory = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="gateway-redis-"))
        self.appendonly = appendonly
        self.password = password
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> RedisServer:
        executable = shutil.which("redis-server")
        if executable is None:
            raise RedisServerMissing(
                f"redis-server is not on PATH; run {_ENSURE_SCRIPT} (as root) to install it"
            )
        if self.running:
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        # A port picked here may be taken by someone else before Redis binds it: pick again.
        # A port fixed by a restart is retried for a while instead, since it is ours to reuse.
        fixed = self.port is not None
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if not fixed:
                self.port = _free_port()
            error = self._launch(executable, deadline)
            if error is None:
                return self
            if time.monotonic() > deadline or "in use" not in error:
                raise RedisServerError(f"redis-server did not start on port {self.port}: {error}")
            time.sleep(0.2)

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server: SIGTERM (clean shutdown), or SIGKILL when `kill` (a crash)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)

    def restart(self, *, kill: bool = False) -> RedisServer:
        """Stop and start again on the same port with the same data directory."""
        self.stop(kill=kill)
        return self.start()

    def cleanup(self) -> None:
        self.stop()
        if self._own_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()

    # -- use ---------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running else None

    def url(self, db: int = 0) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/{db}"

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1", port=self.port, db=db, password=self.password,
            socket_timeout=5, socket_connect_timeout=5,
            retry=Retry(NoBackoff(), 0),  # a test that expects an error gets it at once
        )

    def flush(self) -> None:
        with contextlib.closing(self.client()) as client:
            client.flushall()

    # -- internals ---------------------------------------------------------------------------

    @property
    def log_path(self) -> Path:
        return self.directory / "redis.log"

    def _arguments(self, executable: str) -> list[str]:
        args = [
            executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--logfile", str(self.log_path),
            "--daemonize", "no",
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "always",
        ]
        if self.password:
            args += ["--requirepass", self.password]
        return args

    def _launch(self, executable: str, deadline: float) -> str | None:
        """Start the process and wait until it answers; None on success, else why not."""
        log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        # Output goes to files, never to a pipe nobody reads (a full pipe would block Redis).
        with (self.directory / "redis.stderr").open("ab") as stderr:
            self._process = subprocess.Popen(
                self._arguments(executable),
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                preexec_fn=_die_with_parent if _on_main_thread() else None,
            )
        with contextlib.closing(self.client()) as client:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    self._process = None
                    return self._log_since(log_start).strip() or "exited"
                try:
                    if client.ping():
                        return None
                except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
                    pass  # not listening yet, or still loading its data
                time.sleep(0.05)
        self.stop(kill=True)
        return f"no answer within {START_TIMEOUT:.0f} s; log: {self._log_since(log_start)}"

    def _log_since(self, offset: int) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                return log.read().decode(errors="replace")[-2000:]
        except OSError:
            return ""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _die_with_parent() -> None:
    """In the child before exec: have the kernel stop Redis if the test run dies (Linux).

    The signal follows the *thread* that forked, hence only used from the main thread.
    """
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


# -- one shared server per test session ------------------------------------------------------


class _SharedServer:
    """The session's server, counted so that importing the fixtures into several conftests
    (each gets its own session fixture) still starts one server and stops it once."""

    def __init__(self) -> None:
        self._server: RedisServer | None = None
        self._users = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def use(self) -> Iterator[RedisServer]:
        with self._lock:
            if self._server is None or not self._server.running:
                self._server = RedisServer().start()
            self._users += 1
            server = self._server
        try:
            yield server
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0 and self._server is not None:
                    self._server.cleanup()
                    self._server = None


_shared = _SharedServer()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """The session's shared redis-server. Tests must not stop it: use redis_server_factory."""
    with _shared.use() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """URL of the shared server's database 0, emptied for this test."""
    if not redis_server.running:  # a test stopped it against the rules: bring it back
        redis_server.start()
    redis_server.flush()
    return redis_server.url()


@pytest.fixture
def redis_server_factory(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Start private servers (`factory(appendonly=True, password=...)`) this test may stop."""
    servers: list[RedisServer] = []

    def start(**options: object) -> RedisServer:
        directory = tmp_path / f"redis-{len(servers)}"
        server = RedisServer(directory, **options)  # type: ignore[arg-type]
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.cleanup()

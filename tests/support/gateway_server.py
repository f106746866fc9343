"""The gateway as users run it, for end-to-end tests: `gateway serve` in a subprocess.

`GatewayServer` writes a mappings directory, starts gunicorn and the job worker on a free
loopback port with the environment a deployment would have, waits for /healthz, and can stop,
SIGKILL and restart the whole process group (same port, same store). `signed_post` sends a
request the way Twilio does, with a valid X-Twilio-Signature.

    with GatewayServer(tmp_path, apps=[app_config(customer_app.url("/answer"))]) as gw:
        response = gw.signed_post("/twilio/voice", call_params(to="+14155550100"))
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests
from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC" + "0" * 31 + "1"
AUTH_TOKEN = "twilio-test-token-not-secret"
APP_TOKEN_ENV = "TEST_PLIVO_AUTH_TOKEN"
APP_AUTH_TOKEN = "plivo-test-token-not-secret"
APP_NUMBER = "+14155550100"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_config(answer_url: str, *, name: str = "support", account: str = "MA0000000000000001",
               numbers: tuple[str, ...] = (APP_NUMBER,), **extra) -> dict:
    """One [[app]] of a routing file, allowing loopback (the test apps live there)."""
    config = {"name": name, "account": account, "numbers": list(numbers),
              "answer_url": answer_url, "auth_token_env": APP_TOKEN_ENV,
              "allowed_hosts": ["127.0.0.1"]}
    config.update(extra)
    return config


def toml_value(value) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return str(value)


def write_mappings(directory: Path, apps: list[dict]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    lines = []
    for app in apps:
        lines.append("[[app]]")
        lines.extend(f"{k} = {toml_value(v)}" for k, v in app.items())
        lines.append("")
    (directory / "apps.toml").write_text("\n".join(lines))
    return directory


def twilio_call_params(*, to: str = APP_NUMBER, from_: str = "+14155550111",
                       call_sid: str | None = None, status: str = "ringing") -> dict[str, str]:
    call_sid = call_sid or "CA" + uuid.uuid4().hex
    return {"CallSid": call_sid, "AccountSid": ACCOUNT_SID, "From": from_, "To": to,
            "Caller": from_, "Called": to, "CallStatus": status, "Direction": "inbound",
            "ApiVersion": "2010-04-01"}


_RUNNING: set[int] = set()  # process groups started here and not yet stopped


@atexit.register
def _kill_leftovers() -> None:
    """A test session that dies (or is interrupted) must not leave gateways running."""
    for pgid in list(_RUNNING):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


class GatewayServer:
    def __init__(self, workdir: Path, *, apps: list[dict], store_url: str | None = None,
                 api_base_url: str | None = None, env: dict[str, str] | None = None,
                 web_only: bool = False, budget: float = 4.0):
        self.workdir = Path(workdir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # The side-stream server on its own port; on loopback nothing routes /twilio/media from
        # the web port to it, so the TwiML names its port directly (plain ws://).
        self.media_port = free_port()
        self.media_url = f"ws://127.0.0.1:{self.media_port}/twilio/media"
        self.mappings = write_mappings(self.workdir / "mappings", apps)
        self.store_url = store_url or f"sqlite:///{self.workdir / 'state' / 'gateway.db'}"
        self.env = {
            **os.environ,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "GATEWAY_PUBLIC_URL": self.url, "GATEWAY_MAPPINGS": str(self.mappings),
            "GATEWAY_STORE_URL": self.store_url, "PORT": str(self.port),
            "GATEWAY_SPOOL": str(self.workdir / "state" / "spool.db"),
            "GATEWAY_WEBHOOK_BUDGET": str(budget), APP_TOKEN_ENV: APP_AUTH_TOKEN,
            "WEB_CONCURRENCY": "2", "PYTHONUNBUFFERED": "1", "GATEWAY_BIND": "127.0.0.1",
            "GATEWAY_MEDIA_PORT": str(self.media_port), "GATEWAY_MEDIA_URL": self.media_url,
        }
        if api_base_url:
            self.env["TWILIO_API_BASE_URL"] = api_base_url
        self.env.update(env or {})
        self.web_only = web_only
        self.process: subprocess.Popen | None = None
        self.log_path = self.workdir / "gateway.log"
        self.validator = RequestValidator(AUTH_TOKEN)
        self.session = requests.Session()

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> GatewayServer:
        command = [sys.executable, "-m", "gateway.cli", "serve"]
        if self.web_only:
            command.append("--web-only")
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(command, env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True,
                                        cwd=self.workdir)
        _RUNNING.add(self.process.pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.process.returncode}:\n"
                                   + self.logs()[-3000:])
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code in (200, 503) \
                        and (self.web_only or self.media_health() is not None):
                    return self
            except requests.RequestException:  # not listening yet, or still booting
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("gateway did not answer /healthz in time:\n" + self.logs()[-3000:])

    def media_health(self) -> dict | None:
        """The side-stream server's counters (None while it is not listening)."""
        try:
            return requests.get(f"http://127.0.0.1:{self.media_port}/healthz", timeout=1).json()
        except (requests.RequestException, ValueError):
            return None

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self._reap()

    def kill(self) -> None:
        """SIGKILL the whole group (gunicorn master, workers, job worker), as a crash."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self._reap()

    def _reap(self) -> None:
        """Whatever of the group outlived its leader goes too."""
        if self.process:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            _RUNNING.discard(self.process.pid)

    def restart(self) -> GatewayServer:
        self.stop()
        return self.start()

    def group_processes(self) -> dict[int, str]:
        """The live processes of the gateway's group: pid -> command line (from /proc)."""
        found: dict[int, str] = {}
        if not self.process:
            return found
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            except OSError:  # gone meanwhile
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[2]) == self.process.pid and fields[0] != "Z":  # pgrp; not a zombie
                found[int(entry.name)] = cmdline
        return found

    def pids_running(self, command_part: str) -> list[int]:
        """The live processes of the group whose command line contains `command_part`, e.g.
        "gateway.cli worker" (the job worker) or "gunicorn" (master and web workers)."""
        return sorted(pid for pid, cmdline in self.group_processes().items()
                      if command_part in cmdline)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> GatewayServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- requests as Twilio sends them ------------------------------------------------------------
    def signed_post(self, path: str, params: dict[str, str], *, signature: str | None = None,
                    timeout: float = 20.0) -> requests.Response:
        url = self.url + path
        headers = {}
        sig = self.validator.compute_signature(url, params) if signature is None else signature
        if sig:
            headers["X-Twilio-Signature"] = sig
        return self.session.post(url, data=params, headers=headers, timeout=timeout)

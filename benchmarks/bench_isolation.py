"""One bad tenant must not hurt the others: signed calls under hostile clients and a hanging app.

Two scenarios, each run against the gateway under each `--worker-class` asked for (`gateway
serve --web-only`, 2 workers, SQLite store), with a keep-alive customer app on loopback:

- `slow-clients`: `--slow` connections (200) each send the headers of `POST /twilio/voice` with
  `Content-Length: --length`, then one body byte every 2 s; a connection the gateway refuses
  (408 when its body's time is up, 413 when the length is over the limit) is replaced at once,
  so `--slow` stay open throughout. Meanwhile signed first voice webhooks to a healthy app
  arrive at `--rate` (20) per second, each on a new connection, for `--seconds`, whatever the
  answers do (open loop: latency runs from when a call was due, so a stalled server shows).
  Target: every call answered, p99 < 1 s.
- `hanging-app`: 60 callers call an app that accepts the request and never answers (each caller
  waits 1 s between calls, as calls come in, not as fast as answers return); meanwhile calls to
  the healthy app arrive at `--rate` per second as above. Targets: the healthy app's calls
  answered with p99 < 1 s; every call to the hanging app answered with the apology before
  Twilio's 15 s (the budget is the default 13 s).

    .venv/bin/python -m benchmarks.bench_isolation [--quick] [--worker-class gevent gthread]
        [--slow 200] [--length 60000] [--seconds 20] [--json out.json]

`--length 60000` is under the gateway's 64 KiB body limit, so the body really trickles and the
time limit does the work; `--length 100000` (the figure of issue 9) is refused at once with 413.
`--quick` runs each scenario for 8 s with a 4 s budget, for a smoke run; the full run is about
2 minutes per worker class.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from twilio.request_validator import RequestValidator

from benchmarks.answer_server import AnswerServer
from benchmarks.load import closed_loop, group_cpu_seconds, twilio_shot
from benchmarks.stats import percentile
from tests.support.gateway_server import (
    AUTH_TOKEN,
    GatewayServer,
    app_config,
    twilio_call_params,
)
from tests.support.trickle_app import TrickleApp

HEALTHY, HANGING = "+14155550100", "+14155550400"
HELLO = "<Response><Speak>Hello from the healthy app</Speak></Response>"
TWILIO_GIVES_UP = 15.0
HANGING_CALLERS = 60


def healthy_answer(status: int, body: bytes) -> bool:
    return status == 200 and b"Hello from the healthy app" in body


def apology(status: int, body: bytes) -> bool:
    return status == 200 and b"sorry" in body and b"<Hangup" in body


def signed_calls(base_url: str, to: str, count: int, validator) -> list:
    return [twilio_shot(base_url, "/twilio/voice",
                        twilio_call_params(to=to, call_sid="CA" + uuid.uuid4().hex), validator)
            for _ in range(count)]


@dataclass
class OpenLoop:
    """Calls sent at a fixed rate whatever the answers do, each on a connection of its own (as
    Twilio sends them); a call's latency runs from the moment it was due, so a stalled server
    shows in the percentiles instead of slowing the sender (no coordinated omission)."""

    sent: int = 0
    ok: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    first_error: str = ""


def open_loop(port: int, shots: list, *, rate: float, seconds: float, check) -> OpenLoop:
    outcome, lock = OpenLoop(), threading.Lock()
    began = time.monotonic()

    def one(shot, due: float) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TWILIO_GIVES_UP)
        try:
            connection.request("POST", shot.path, shot.body, shot.headers)
            response = connection.getresponse()
            good, error = check(response.status, response.read()), f"HTTP {response.status}"
        except (OSError, http.client.HTTPException) as exc:
            good, error = False, repr(exc)
        finally:
            connection.close()
        with lock:
            if good:
                outcome.ok += 1
                outcome.latencies.append(time.monotonic() - due)
            else:
                outcome.errors += 1
                outcome.first_error = outcome.first_error or error

    with ThreadPoolExecutor(max_workers=128) as pool:
        for index, shot in enumerate(shots):
            due = began + index / rate
            if due - began > seconds:
                break
            time.sleep(max(0.0, due - time.monotonic()))
            outcome.sent += 1
            pool.submit(one, shot, due)
    return outcome


def latency_summary(outcome) -> dict:
    ms = [1000 * s for s in outcome.latencies]
    return {"sent": outcome.sent, "answered": outcome.ok, "errors": outcome.errors,
            "p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99),
            "max_ms": max(ms) if ms else None, "first_error": outcome.first_error}


class SlowClients:
    """`count` connections that trickle a body to /twilio/voice, each replaced once refused."""

    def __init__(self, port: int, count: int, length: int, interval: float = 2.0):
        self.port, self.count, self.length, self.interval = port, count, length, interval
        self.refusals: Counter = Counter()
        self.opened = 0
        self._sockets: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _open(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        sock.sendall(b"POST /twilio/voice HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\n"
                     b"Content-Length: %d\r\n\r\nCallSid=" % self.length)
        sock.setblocking(False)
        self.opened += 1
        return sock

    def __enter__(self) -> SlowClients:
        self._sockets = [self._open() for _ in range(self.count)]
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for index, sock in enumerate(self._sockets):
                refused = False
                try:
                    answer = sock.recv(64)
                    refused = True
                    self.refusals[answer[9:12].decode(errors="replace") or "closed"] += 1
                except BlockingIOError:  # nothing said yet: keep trickling
                    with contextlib.suppress(OSError):
                        sock.send(b"x")
                except OSError:
                    refused = True
                    self.refusals["reset"] += 1
                if refused and not self._stop.is_set():
                    sock.close()
                    with contextlib.suppress(OSError):
                        self._sockets[index] = self._open()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(self.interval + 5)
        for sock in self._sockets:
            sock.close()


def gateway_for(workdir: Path, worker_class: str, healthy_url: str, hanging_url: str,
                budget: float) -> GatewayServer:
    apps = [app_config(healthy_url, name="healthy", numbers=(HEALTHY,)),
            app_config(hanging_url, name="hanging", numbers=(HANGING,),
                       account="MA0000000000000002")]
    return GatewayServer(workdir, apps=apps, budget=budget, web_only=True,
                         env={"GATEWAY_WORKER_CLASS": worker_class, "GATEWAY_LOG_LEVEL": "ERROR"})


def slow_clients(args, worker_class: str, workdir: Path) -> dict:
    validator = RequestValidator(AUTH_TOKEN)
    with AnswerServer() as app, TrickleApp("silent") as hanging:
        app.route("/answer", HELLO)
        gateway = gateway_for(workdir, worker_class, app.url("/answer"), hanging.url("/hang"),
                              args.budget)
        with gateway:
            shots = signed_calls(gateway.url, HEALTHY, 20_000, validator)
            closed_loop(gateway.url, shots[:50], concurrency=2, time_limit=5,
                        check=healthy_answer)  # warm-up
            cpu = group_cpu_seconds(gateway.process.pid)
            with SlowClients(gateway.port, args.slow, args.length) as slow:
                time.sleep(1.0)  # all connected and waiting
                outcome = open_loop(gateway.port, shots[50:], rate=args.rate,
                                    seconds=args.seconds, check=healthy_answer)
            cpu = group_cpu_seconds(gateway.process.pid) - cpu
    return {"scenario": "slow-clients", "worker_class": worker_class,
            "slow_connections": args.slow, "content_length": args.length,
            "slow_connections_opened": slow.opened, "refusals": dict(slow.refusals),
            "signed_calls": latency_summary(outcome),
            "gateway_cpu_s": round(cpu, 2),
            "meets_target": outcome.errors == 0 and outcome.ok > 0
            and percentile(outcome.latencies, 99) < 1.0}


def hanging_callers(gateway: GatewayServer, validator, seconds: float, results: list,
                    lock: threading.Lock, stop: threading.Event) -> None:
    """One caller of the hanging app: a call, its answer, a second's pause, and again."""
    end = time.monotonic() + seconds
    while time.monotonic() < end and not stop.is_set():
        shot = signed_calls(gateway.url, HANGING, 1, validator)[0]
        connection = http.client.HTTPConnection("127.0.0.1", gateway.port,
                                                timeout=TWILIO_GIVES_UP + 5)
        began = time.monotonic()
        try:
            connection.request("POST", shot.path, shot.body, shot.headers)
            response = connection.getresponse()
            ok = apology(response.status, response.read())
        except (OSError, http.client.HTTPException):
            ok = False
        finally:
            connection.close()
        with lock:
            results.append((ok, time.monotonic() - began))
        stop.wait(1.0)


def hanging_app(args, worker_class: str, workdir: Path) -> dict:
    validator = RequestValidator(AUTH_TOKEN)
    with AnswerServer() as app, TrickleApp("silent") as hanging:
        app.route("/answer", HELLO)
        gateway = gateway_for(workdir, worker_class, app.url("/answer"), hanging.url("/hang"),
                              args.budget)
        with gateway:
            shots = signed_calls(gateway.url, HEALTHY, 20_000, validator)
            closed_loop(gateway.url, shots[:50], concurrency=2, time_limit=5,
                        check=healthy_answer)  # warm-up
            results: list[tuple[bool, float]] = []
            lock, stop = threading.Lock(), threading.Event()
            callers = [threading.Thread(target=hanging_callers, daemon=True,
                                        args=(gateway, validator, args.seconds, results, lock,
                                              stop))
                       for _ in range(HANGING_CALLERS)]
            cpu = group_cpu_seconds(gateway.process.pid)
            for caller in callers:
                caller.start()
            time.sleep(0.5)  # the first 60 calls are in flight
            outcome = open_loop(gateway.port, shots[50:], rate=args.rate,
                                seconds=args.seconds, check=healthy_answer)
            stop.set()
            for caller in callers:
                caller.join(TWILIO_GIVES_UP + 10)
            cpu = group_cpu_seconds(gateway.process.pid) - cpu
    waits = [elapsed for _, elapsed in results]
    hanging_summary = {
        "calls": len(results), "apologies": sum(ok for ok, _ in results),
        "max_s": round(max(waits), 2) if waits else None,
        "p50_s": round(percentile(waits, 50), 2) if waits else None,
        "over_15_s": sum(w >= TWILIO_GIVES_UP for w in waits)}
    return {"scenario": "hanging-app", "worker_class": worker_class, "budget_s": args.budget,
            "hanging_callers": HANGING_CALLERS, "healthy_calls": latency_summary(outcome),
            "hanging_calls": hanging_summary, "gateway_cpu_s": round(cpu, 2),
            "meets_target": outcome.errors == 0 and outcome.ok > 0
            and percentile(outcome.latencies, 99) < 1.0
            and hanging_summary["apologies"] == hanging_summary["calls"]
            and hanging_summary["over_15_s"] == 0}


def report(results: list[dict]) -> str:
    lines = []
    for r in results:
        verdict = "meets" if r["meets_target"] else "MISSES"
        if r["scenario"] == "slow-clients":
            c = r["signed_calls"]
            lines.append(
                f"slow-clients  {r['worker_class']:<8} {r['slow_connections']} slow connections "
                f"(Content-Length {r['content_length']}; {r['slow_connections_opened']} opened, "
                f"refused {r['refusals'] or 'none'}): signed calls {c['answered']}/{c['sent']} "
                f"answered, p50 {c['p50_ms']:.0f} ms, p99 {c['p99_ms']:.0f} ms; gateway CPU "
                f"{r['gateway_cpu_s']} s; {verdict} the target")
        else:
            c, h = r["healthy_calls"], r["hanging_calls"]
            lines.append(
                f"hanging-app   {r['worker_class']:<8} {r['hanging_callers']} callers of a "
                f"hanging app (budget {r['budget_s']:g} s): healthy app {c['answered']}/"
                f"{c['sent']} answered, p50 {c['p50_ms']:.0f} ms, p99 {c['p99_ms']:.0f} ms; "
                f"hanging app {h['apologies']}/{h['calls']} apologies, slowest {h['max_s']} s, "
                f"{h['over_15_s']} over 15 s; gateway CPU {r['gateway_cpu_s']} s; {verdict} "
                "the targets")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker-class", nargs="+", default=["gevent"],
                        choices=("gevent", "gthread"), help="candidates to measure")
    parser.add_argument("--scenario", nargs="+", default=["slow-clients", "hanging-app"],
                        choices=("slow-clients", "hanging-app"))
    parser.add_argument("--slow", type=int, default=200, help="slow connections held open")
    parser.add_argument("--length", type=int, default=60_000,
                        help="the Content-Length the slow connections announce")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds per scenario")
    parser.add_argument("--rate", type=float, default=20.0,
                        help="signed calls per second to the healthy app (open loop)")
    parser.add_argument("--budget", type=float, default=13.0, help="GATEWAY_WEBHOOK_BUDGET")
    parser.add_argument("--quick", action="store_true",
                        help="8 s per scenario, a 4 s budget: a smoke run")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.budget = 8.0, 4.0
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-isolation-") as tmp:
        for worker_class in args.worker_class:
            for scenario in args.scenario:
                run = slow_clients if scenario == "slow-clients" else hanging_app
                result = run(args, worker_class, Path(tmp) / f"{scenario}-{worker_class}")
                results.append(result)
                print(report([result]), flush=True)
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"benchmark": "isolation", "results": results}, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

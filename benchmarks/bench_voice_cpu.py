"""CPU per `/twilio/voice` webhook of the gateway's Flask app and of the proxy's, in one process.

`bench_voice` measures the servers under gunicorn, with the load generator and the customer app
on the same two cores: its throughput ratio swings from one round to the next with whatever
else the machine runs, and even its CPU per request moves with the host. This benchmark takes
gunicorn, gevent, the network client and the scheduling of the other processes out: each app's
WSGI callable is called directly, one request after another on one thread, with signed voice
webhooks (distinct CallSids) whose answers come from the keep-alive customer app
(`answer_server.py`, forked into a process of its own, so its work is not counted), and the
thread's CPU time is read around each round. What is left is the app's own work: for the
gateway, the signature, parameters, the signed fetch, parsing, translation and the call record
in SQLite; for the proxy, the fetch through `requests`. Rounds alternate gateway, proxy, ...;
the report gives the median µs per request of each and their ratio.

    .venv/bin/python -m benchmarks.bench_voice_cpu [--rounds 5] [--requests 2000]
        [--document both|conference|menu|forward] [--json out.json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from benchmarks.answer_server import AnswerServer
from benchmarks.bench_voice import VOICE, documents, gateway_answered, proxy_answered
from benchmarks.stats import median, ratio
from tests.support.gateway_server import AUTH_TOKEN, GatewayServer, app_config, twilio_call_params


def signed_environ(base_url: str, validator: RequestValidator) -> dict:
    """The WSGI environ of one signed first voice webhook of a new call."""
    params = twilio_call_params(call_sid="CA" + uuid.uuid4().hex)
    body = urlencode(params).encode()
    host = base_url.split("://", 1)[1]
    return {"REQUEST_METHOD": "POST", "PATH_INFO": VOICE, "QUERY_STRING": "",
            "SERVER_NAME": host.split(":")[0], "SERVER_PORT": host.split(":")[1],
            "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http", "HTTP_HOST": host,
            "CONTENT_TYPE": "application/x-www-form-urlencoded",
            "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr, "REMOTE_ADDR": "127.0.0.1",
            "HTTP_X_TWILIO_SIGNATURE": validator.compute_signature(base_url + VOICE, params)}


def cpu_per_request(wsgi, environs: list[dict], answered) -> float:
    """µs of this thread's CPU per request, over `environs`; every answer must be `answered`
    (a benchmark that measured apologies would measure nothing)."""
    statuses: list[int] = []

    def start_response(status, headers, exc_info=None):
        statuses.append(int(status.split(" ", 1)[0]))
    began = time.thread_time()
    for environ in environs:
        body = b"".join(wsgi(environ, start_response))
        if not answered(statuses[-1], body):
            raise RuntimeError(f"unexpected answer: {statuses[-1]} {body[:200]!r}")
    return 1e6 * (time.thread_time() - began) / len(environs)


def compare(args, workdir: Path) -> dict:
    validator = RequestValidator(AUTH_TOKEN)
    app = AnswerServer()
    app.route("/answer", *documents(args.document, app))
    child = os.fork()
    if child == 0:  # the customer app, in a process of its own: its CPU is not counted
        try:
            app.serve_forever()
        finally:
            os._exit(0)
    app.socket.close()
    try:
        # Not started: its environment, mappings and store path configure the app built here.
        gateway = GatewayServer(workdir / "gateway", apps=[app_config(app.url("/answer"))],
                                web_only=True)
        os.environ.update(gateway.env)
        os.environ["PROXY_ANSWER_URL"] = app.url("/answer")
        from benchmarks.proxy_app import create_app as create_proxy
        from gateway.app import create_app as create_gateway

        apps = {"gateway": (create_gateway(), gateway_answered),
                "proxy": (create_proxy(), proxy_answered)}
        figures: dict[str, list[float]] = {name: [] for name in apps}
        for wsgi, answered in apps.values():  # warm-up: imports, pools, the SQLite file
            cpu_per_request(wsgi, [signed_environ(gateway.url, validator)
                                   for _ in range(args.warmup)], answered)
        for index in range(args.rounds):
            order = list(apps) if index % 2 == 0 else list(apps)[::-1]
            for name in order:
                wsgi, answered = apps[name]
                environs = [signed_environ(gateway.url, validator)
                            for _ in range(args.requests)]
                figures[name].append(cpu_per_request(wsgi, environs, answered))
                print(f"  round {index + 1} {name:<8} {figures[name][-1]:7.0f} µs/request",
                      flush=True)
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
    result = {"benchmark": "voice-cpu", "document": args.document, "rounds": args.rounds,
              "requests_per_round": args.requests,
              **{f"{name}_us_per_request": values for name, values in figures.items()},
              "gateway_median_us": median(figures["gateway"]),
              "proxy_median_us": median(figures["proxy"])}
    result["gateway_over_proxy"] = ratio(result["gateway_median_us"], result["proxy_median_us"])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per app")
    parser.add_argument("--requests", type=int, default=2000, help="requests per round")
    parser.add_argument("--warmup", type=int, default=300, help="untimed requests first")
    parser.add_argument("--document", choices=("both", "conference", "menu", "forward"),
                        default="both", help="what the app answers (as in bench_voice)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-voice-cpu-") as tmp:
        result = compare(args, Path(tmp))
    print(f"CPU per /twilio/voice request, in process, one thread ({args.rounds} rounds of "
          f"{args.requests}, document {args.document}): gateway "
          f"{result['gateway_median_us']:.0f} µs, proxy {result['proxy_median_us']:.0f} µs "
          f"(medians); gateway/proxy {result['gateway_over_proxy']:.2f}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`/twilio/voice` through a loopback customer app, the gateway side by side with a minimal proxy.

Both servers run under gunicorn with the same settings (`gateway serve`'s: 2 gevent workers,
access log on) and fetch the same answer from the same customer app on loopback: a
Plivo `<Speak>` + `<Conference>` document. The gateway checks Twilio's signature, routes by the
called number, sends Plivo's parameters signed V2 and V3, parses and validates the XML,
translates it to TwiML, writes the call record (and the member it expects) to its SQLite store,
and answers; with `--document both` (the default) the app answers a `<GetDigits>` menu and the
conference document in turn (`menu`, `conference`: only that one; `forward`: a `<Dial>` to two
numbers with an action and a callbackUrl, as call-forwarding apps answer); the proxy
(`proxy_app.py`)
fetches the same XML and returns it untranslated.

Same client (`load.closed_loop`), same concurrency, same signed requests with distinct CallSids;
rounds alternate A B B A ... after one untimed warm-up round each. Reported: median
throughput of each, their ratio (issue 9's target: gateway >= 90% of the proxy; issue 2 asked
80%), the median of the per-pair ratios, latency percentiles pooled over the timed rounds,
and CPU ms per request of each server's process group. `--profile` then serves requests from
a gateway whose workers run under cProfile and prints where their time goes.

    .venv/bin/python -m benchmarks.bench_voice [--rounds 6] [--requests 1500] [--seconds 6]
        [--concurrency 16] [--app tests|keepalive] [--profile] [--json out.json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pstats
import sys
import tempfile
import uuid
from pathlib import Path

from twilio.request_validator import RequestValidator

from benchmarks.answer_server import AnswerServer
from benchmarks.load import Outcome, Shot, closed_loop, group_cpu_seconds, twilio_shot
from benchmarks.servers import QuietCustomerApp, profiled_gateway, proxy_server
from benchmarks.stats import median, percentile, ratio
from tests.support.gateway_server import (
    APP_AUTH_TOKEN,
    AUTH_TOKEN,
    GatewayServer,
    app_config,
    twilio_call_params,
)

TARGET_RATIO = 0.90
VOICE = "/twilio/voice"


def answer_xml(callback_url: str) -> str:
    """What a typical Plivo conferencing app answers: a greeting, then the room."""
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Response>\n'
            '  <Speak voice="WOMAN" language="en-US">Welcome. Connecting you to the sales '
            'team.</Speak>\n'
            f'  <Conference callbackUrl="{callback_url}" callbackMethod="POST" '
            'startConferenceOnEnter="true" endConferenceOnExit="false" maxMembers="20">'
            "Sales Room</Conference>\n</Response>\n")


def menu_xml(action_url: str) -> str:
    """What a typical Plivo IVR answers first: a keypad menu with a fallback."""
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Response>\n'
            f'  <GetDigits action="{action_url}" method="POST" numDigits="1" timeout="7" '
            'retries="2" validDigits="123">\n'
            '    <Speak voice="WOMAN" language="en-US">For sales press 1, for support press 2, '
            "for billing press 3.</Speak>\n  </GetDigits>\n"
            "  <Speak>We did not receive any input. Goodbye.</Speak>\n</Response>\n")


def forward_xml(action_url: str, callback_url: str) -> str:
    """What a call-forwarding app answers: a greeting, then two phones rung at once."""
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Response>\n'
            '  <Speak voice="WOMAN" language="en-US">Please wait while we connect you.</Speak>\n'
            f'  <Dial action="{action_url}" callbackUrl="{callback_url}" timeout="25" '
            'callerId="14155550100">\n'
            '    <Number>14155550111</Number>\n    <Number>14155550112</Number>\n'
            "  </Dial>\n  <Speak>Nobody is available. Goodbye.</Speak>\n</Response>\n")


def documents(kind: str, app) -> list[str]:
    if kind == "forward":
        return [forward_xml(app.url("/dialed"), app.url("/dial-events"))]
    conference = answer_xml(app.url("/conference-events"))
    menu = menu_xml(app.url("/menu"))
    return {"conference": [conference], "menu": [menu], "both": [conference, menu]}[kind]


def gateway_answered(status: int, body: bytes) -> bool:
    """The gateway translated the document (not its spoken apology)."""
    translated = (b"<Dial" in body and (b"<Conference" in body or b"<Number" in body)) or (
        b"<Gather" in body)
    return status == 200 and translated and b"sorry" not in body


def proxy_answered(status: int, body: bytes) -> bool:
    return status == 200 and (b"<Conference" in body or b"<GetDigits" in body
                              or b"<Number" in body)


def shots(base_url: str, count: int, validator: RequestValidator) -> list[Shot]:
    """`count` first voice webhooks of distinct calls, signed for base_url."""
    return [twilio_shot(base_url, VOICE, twilio_call_params(call_sid="CA" + uuid.uuid4().hex),
                        validator) for _ in range(count)]


class Target:
    """One server under load: where it is, how to check an answer, its process group."""

    def __init__(self, name: str, url: str, pgid: int, check):
        self.name, self.url, self.pgid, self.check = name, url, pgid, check
        self.rounds: list[dict] = []
        self.latencies: list[float] = []

    def run(self, count: int, *, concurrency: int, seconds: float, validator,
            keep: bool = True) -> Outcome:
        prepared = shots(self.url, count, validator)
        cpu_before = group_cpu_seconds(self.pgid)
        outcome = closed_loop(self.url, prepared, concurrency=concurrency, time_limit=seconds,
                              check=self.check)
        cpu = group_cpu_seconds(self.pgid) - cpu_before
        if keep:
            self.rounds.append({"ok": outcome.ok, "errors": outcome.errors,
                                "elapsed_s": outcome.elapsed, "rps": outcome.throughput,
                                "cpu_ms_per_request": 1000 * cpu / max(1, outcome.ok),
                                "first_error": outcome.first_error})
            self.latencies.extend(outcome.latencies)
        return outcome

    def summary(self) -> dict:
        ms = [1000 * s for s in self.latencies]
        return {"rounds": self.rounds, "median_rps": median([r["rps"] for r in self.rounds]),
                "requests": sum(r["ok"] for r in self.rounds),
                "errors": sum(r["errors"] for r in self.rounds),
                "p50_ms": percentile(ms, 50), "p90_ms": percentile(ms, 90),
                "p99_ms": percentile(ms, 99),
                "median_cpu_ms_per_request": median([r["cpu_ms_per_request"]
                                                     for r in self.rounds])}


def customer_app(kind: str):
    """`tests`: the tests' CustomerApp (werkzeug; closes each connection after one answer).
    `keepalive`: AnswerServer (HTTP/1.1 keep-alive, as a production app would be)."""
    return QuietCustomerApp(auth_token=APP_AUTH_TOKEN) if kind == "tests" else AnswerServer()


def compare(args, workdir: Path) -> dict:
    validator = RequestValidator(AUTH_TOKEN)
    with customer_app(args.app) as app:
        bodies = documents(args.document, app)
        if isinstance(app, AnswerServer):
            app.route("/answer", *bodies)
        else:
            turn = iter(range(1 << 62))
            app.route("/answer", handler=lambda _req: bodies[next(turn) % len(bodies)])
        gateway = GatewayServer(workdir / "gateway", apps=[app_config(app.url("/answer"))],
                                web_only=True,
                                env={"GATEWAY_WORKER_CLASS": args.worker_class})
        proxy = proxy_server(workdir / "proxy", app.url("/answer"),
                             worker_class=args.worker_class)
        with gateway, proxy:
            targets = [Target("gateway", gateway.url, gateway.process.pid, gateway_answered),
                       Target("proxy", proxy.url, proxy.process.pid, proxy_answered)]
            for target in targets:  # warm-up: imports, connection pools, SQLite file
                target.run(args.warmup, concurrency=args.concurrency, seconds=args.seconds,
                           validator=validator, keep=False)
                app.clear()
            for index in range(args.rounds):
                order = targets if index % 2 == 0 else targets[::-1]  # A B B A A B ...
                for target in order:
                    outcome = target.run(args.requests, concurrency=args.concurrency,
                                         seconds=args.seconds, validator=validator)
                    app.clear()
                    print(f"  round {index + 1} {target.name:<8} {outcome.throughput:7.1f} req/s"
                          f"  ({outcome.ok} ok, {outcome.errors} errors)", flush=True)
            profile = (run_profile(args, gateway, app.url("/answer"), workdir, validator)
                       if args.profile else None)
    gw, px = (t.summary() for t in targets)
    pair_ratios = [ratio(g["rps"], p["rps"]) for g, p in zip(targets[0].rounds,
                                                              targets[1].rounds, strict=True)]
    result = {
        "benchmark": "voice", "app": args.app, "document": args.document,
        "concurrency": args.concurrency, "rounds": args.rounds,
        "worker_class": args.worker_class,
        "requests_per_round": args.requests, "seconds_per_round": args.seconds,
        "gateway": gw, "proxy": px,
        "ratio_of_medians": ratio(gw["median_rps"], px["median_rps"]),
        "median_pair_ratio": median(pair_ratios), "pair_ratios": pair_ratios,
        "target_ratio": TARGET_RATIO,
    }
    result["meets_target"] = result["ratio_of_medians"] >= TARGET_RATIO
    if profile:
        result["profile_top"] = profile
    return result


# Where a request's CPU goes: (label, file path suffix, function name). Cumulative CPU time of
# every entry that matches; rows nest by indentation only (a part may call another).
PROFILE_PARTS = (
    # Flask.__call__ runs the whole WSGI stack (the gateway answers its voice webhook in a
    # middleware before Flask's own request machinery).
    ("whole request (WSGI app)", "flask/app.py", "__call__"),
    ("Twilio signature check", "gateway/twilio_side/signature.py", "signed_by_twilio"),
    ("fetch: AppClient.request", "gateway/app_side/client.py", "request"),
    ("  host allow-list check", "gateway/app_side/hosts.py", "check_url"),
    ("  Plivo V2 + V3 signatures", "gateway/app_side/signing.py", "signature_headers"),
    ("  requests: prepare_request", "requests/sessions.py", "prepare_request"),
    ("  requests: Session.send", "requests/sessions.py", "send"),
    ("fetch: proxy's Session.post", "requests/sessions.py", "post"),
    ("parse Plivo XML", "gateway/plivoxml/parser.py", "parse_document"),
    ("  model.snake_case (regex per attribute)", "gateway/plivoxml/model.py", "snake_case"),
    ("translate to TwiML", "gateway/translate/__init__.py", "translate"),
    ("  TwiML text", "gateway/translate/twiml_text.py", "twiml_text"),
    ("call record: claim", "gateway/calls.py", "claim"),
    ("call record: save", "gateway/calls.py", "save"),
    ("the member the room expects", "gateway/runtime.py", "expect_member"),
    ("dataclasses.asdict (all callers)", "dataclasses.py", "asdict"),
    ("SQLite statements", "~", "<method 'execute' of 'sqlite3.Connection' objects>"),
)


def breakdown(files: list[str], requests: int) -> list[tuple[str, float, float]]:
    """(label, profiled CPU ms per request, share of the whole request) per PROFILE_PARTS."""
    stats = pstats.Stats(*files).stats  # type: ignore[attr-defined]
    totals = []
    for label, path, function in PROFILE_PARTS:
        seconds = sum(entry[3] for (file, _line, name), entry in stats.items()
                      if name == function and file.endswith(path))
        totals.append((label, seconds))
    whole = totals[0][1] or 1.0
    return [(label, 1000 * seconds / max(1, requests), seconds / whole)
            for label, seconds in totals if seconds]


def run_profile(args, gateway: GatewayServer, answer_url: str, workdir: Path,
                validator) -> str:
    """One round against the gateway, then one against the proxy, each with every worker under
    cProfile on the threads' CPU clock; where each request's CPU goes, and the top functions."""
    out = io.StringIO()
    servers = (("gateway", profiled_gateway(gateway, workdir / "profile-gateway"),
                gateway_answered, workdir / "profile-gateway"),
               ("proxy", proxy_server(workdir / "proxy-profiled", answer_url,
                                      profile_dir=workdir / "profile-proxy"),
                proxy_answered, workdir / "profile-proxy"))
    tables = {}
    for name, server, check, profile_dir in servers:
        with server:
            target = Target(name, server.url, server.process.pid, check)
            target.run(args.warmup, concurrency=args.concurrency, seconds=args.seconds,
                       validator=validator, keep=False)
            target.run(args.requests, concurrency=args.concurrency, seconds=args.seconds,
                       validator=validator)
        files = sorted(str(p) for p in profile_dir.glob("worker-*.prof"))
        if not files:
            out.write(f"{name}: no profile written (workers did not exit cleanly)\n")
            continue
        served = target.rounds[0]["ok"] + args.warmup
        tables[name] = (served, breakdown(files, served))
        if name == "gateway":
            stats = pstats.Stats(*files, stream=out)
            stats.strip_dirs()
            out.write(f"--- gateway: top functions over {served} requests, CPU clock\n")
            stats.sort_stats("tottime").print_stats(20)
    out.write("--- where a request's CPU goes (cProfile inflates every figure; compare shares)\n")
    for name, (served, rows) in tables.items():
        out.write(f"{name} ({served} requests):\n")
        for label, ms, share in rows:
            out.write(f"  {label:<44} {ms:7.2f} ms/request (profiled) {share:6.1%}\n")
    return out.getvalue()


def report(result: dict) -> str:
    gw, px = result["gateway"], result["proxy"]
    lines = [f"/twilio/voice via the {result['app']} customer app, "
             f"concurrency {result['concurrency']}, {result['rounds']} timed rounds"
             f" each (<= {result['requests_per_round']} requests or "
             f"{result['seconds_per_round']:g} s per round), interleaved",
             f"{'server':<9} {'median req/s':>12} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
             f"{'CPU ms/req':>10} {'requests':>9} {'errors':>7}"]
    for name, row in (("gateway", gw), ("proxy", px)):
        lines.append(f"{name:<9} {row['median_rps']:>12.1f} {row['p50_ms']:>8.1f} "
                     f"{row['p90_ms']:>8.1f} {row['p99_ms']:>8.1f} "
                     f"{row['median_cpu_ms_per_request']:>10.2f} {row['requests']:>9} "
                     f"{row['errors']:>7}")
    verdict = "meets" if result["meets_target"] else "MISSES"
    lines.append(f"gateway/proxy throughput: {result['ratio_of_medians']:.0%} (ratio of medians);"
                 f" per-pair ratios {', '.join(f'{r:.0%}' for r in result['pair_ratios'])} "
                 f"(median {result['median_pair_ratio']:.0%}); {verdict} the target "
                 f"(>= {TARGET_RATIO:.0%})")
    if gw["errors"] or px["errors"]:
        lines.append("WARNING: some answers were wrong; see the rounds' first_error in --json")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=6, help="timed rounds per server")
    parser.add_argument("--requests", type=int, default=1500, help="max requests per round")
    parser.add_argument("--seconds", type=float, default=6.0, help="max seconds per round")
    parser.add_argument("--warmup", type=int, default=300, help="untimed requests first")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--app", choices=("tests", "keepalive"), default="tests",
                        help="customer app: the tests' CustomerApp (closes connections; default)"
                        " or a keep-alive one (benchmarks/answer_server.py)")
    parser.add_argument("--worker-class", choices=("gevent", "gthread"), default="gevent",
                        help="gunicorn's worker class for both servers (default gevent, as "
                        "`gateway serve`; gthread: 8 threads per worker)")
    parser.add_argument("--document", choices=("both", "conference", "menu", "forward"),
                        default="both",
                        help="what the app answers: a Conference, a GetDigits menu, or both in "
                             "turn (default)")
    parser.add_argument("--profile", action="store_true",
                        help="then profile the gateway's workers and print the top costs")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    keep = os.environ.get("BENCH_KEEP")  # a directory to keep the profiles and logs in
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        result = compare(args, Path(keep))
    else:
        with tempfile.TemporaryDirectory(prefix="bench-voice-") as tmp:
            result = compare(args, Path(tmp))
    print(report(result))
    if result.get("profile_top"):
        print(result["profile_top"])
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

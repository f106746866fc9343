"""CPU per webhook of two or more checkouts of the gateway, side by side under the same load.

A change to the web path is judged by the CPU it saves per webhook, and on this noisy 2-core
machine only a comparison within one run tells: each checkout (a git worktree; `REPO=VAR=VALUE`
sets one environment variable for that server, e.g. a switch under test) is served by `gateway
serve --web-only` with its own code (`PYTHONPATH`), and rounds alternate between them (A B B A
A B ...), each round the same number of signed webhooks from 16 concurrent senders, with the
server's process group's CPU read around it (and each round's answered requests per second
reported beside, a noisier figure: the load generator and the app share the cores). Two loads:

- `speaker`: speaker events in a room nobody asked floor events of (half speech-start, half
  speech-stop), as `bench_conference_events`' speech phase sends them;
- `voice`: first voice webhooks of new calls, the keep-alive customer app answering the
  conference document, as `bench_voice` sends them.

    .venv/bin/python -m benchmarks.compare_checkouts --load speaker|voice [--rounds 8]
        [--requests 5000] CHECKOUT[=VAR=VALUE] CHECKOUT...

Both checkouts run in this repository's virtualenv (the dependencies must be the same). Give
one checkout twice (`A A=X=1`) to see how far two servers of the same code fall apart in
that run: a difference smaller than that says nothing.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import uuid
from contextlib import ExitStack
from pathlib import Path

from twilio.request_validator import RequestValidator

from benchmarks.answer_server import AnswerServer
from benchmarks.bench_voice import documents, gateway_answered, shots
from benchmarks.load import closed_loop, group_cpu_seconds, twilio_shot
from benchmarks.stats import median
from tests.support.gateway_server import AUTH_TOKEN, GatewayServer, app_config

EVENTS = "/twilio/conference/events"


def speaker_shots(url: str, count: int, validator: RequestValidator) -> list:
    conference = "CF" + uuid.uuid4().hex
    shots_ = []
    for index in range(count):
        name = "participant-speech-start" if index % 2 == 0 else "participant-speech-stop"
        params = {"AccountSid": "AC" + "0" * 32, "ConferenceSid": conference,
                  "FriendlyName": "plivo-room", "StatusCallbackEvent": name,
                  "CallSid": "CA" + uuid.uuid4().hex, "SequenceNumber": str(index + 3),
                  "Timestamp": "Tue, 01 Dec 2026 04:00:00 +0000", "ParticipantLabel": "x-1",
                  "Muted": "false", "Hold": "false", "Coaching": "false",
                  "EndConferenceOnExit": "false", "StartConferenceOnEnter": "true"}
        shots_.append(twilio_shot(url, EVENTS, params, validator))
    return shots_


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkouts", nargs="+", metavar="CHECKOUT[=VAR=VALUE]")
    parser.add_argument("--load", choices=("speaker", "voice"), default="speaker")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--requests", type=int, default=5000)
    args = parser.parse_args()
    validator = RequestValidator(AUTH_TOKEN)
    work = Path(tempfile.mkdtemp(prefix="compare-checkouts-"))
    make_shots, answered = ((speaker_shots, lambda status, body: status == 204)
                            if args.load == "speaker" else (
                            shots, gateway_answered))
    cpu: dict[str, list[float]] = {spec: [] for spec in args.checkouts}
    throughput: dict[str, list[float]] = {spec: [] for spec in args.checkouts}
    with ExitStack() as stack:
        app = stack.enter_context(AnswerServer())
        app.route("/answer", *documents("conference", app))
        servers = {}
        for index, spec in enumerate(args.checkouts):
            checkout, _, setting = spec.partition("=")
            env = {"PYTHONPATH": str(Path(checkout).resolve())}
            if setting:
                name, _, value = setting.partition("=")
                env[name] = value
            os.environ["PYTHONPATH"] = env["PYTHONPATH"]  # the server's python imports it
            servers[spec] = stack.enter_context(GatewayServer(
                work / f"gateway-{index}", apps=[app_config(app.url("/answer"))],
                web_only=True, env=env))
        for server in servers.values():  # warm-up: imports, pools, the SQLite file
            closed_loop(server.url, make_shots(server.url, 400, validator), concurrency=16,
                        time_limit=30, check=answered)
        for round_ in range(args.rounds):
            for spec in args.checkouts if round_ % 2 == 0 else args.checkouts[::-1]:
                server = servers[spec]
                prepared = make_shots(server.url, args.requests, validator)
                before = group_cpu_seconds(server.process.pid)
                outcome = closed_loop(server.url, prepared, concurrency=16, time_limit=60,
                                      check=answered)
                cpu[spec].append(1000 * (group_cpu_seconds(server.process.pid) - before)
                                 / max(1, outcome.ok))
                throughput[spec].append(outcome.throughput)
                if outcome.errors:
                    print(f"  {spec}: {outcome.errors} errors ({outcome.first_error})")
                app.clear()
    print(f"CPU ms per {args.load} webhook, {args.rounds} rounds of {args.requests}, "
          "alternately:")
    for spec in args.checkouts:
        rounds = " ".join(f"{x:.3f}" for x in cpu[spec])
        print(f"  {spec}: median {median(cpu[spec]):.3f}  ({rounds}); "
              f"{median(throughput[spec]):.0f} answered/s (median)")


if __name__ == "__main__":
    main()

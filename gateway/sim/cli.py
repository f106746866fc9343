"""`gateway simulate SCENARIO.toml --gateway URL [--api-port N] [--mappings DIR]`.

Runs the scenario in real time against a running gateway and prints one JSON object per line as
things happen: requests sent and answers received, conference events, REST calls, what each
caller heard, each call's end, and finally a `run-end` line. Exit status: 0 when the gateway
answered everything correctly, 1 when it did not (invalid TwiML, a 5xx, a timeout...), 2 for a
bad command line or scenario. Credentials come from TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN (the
values the gateway checks signatures with); start the gateway with
TWILIO_API_BASE_URL=http://127.0.0.1:N and give the simulator the same `--api-port N`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading

from .scenario import ScenarioInvalid, load_scenario
from .simulator import Simulator
from .transcript import Event


def simulate_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="gateway simulate",
        description="Play a scenario against a gateway through a local Twilio simulator.")
    parser.add_argument("scenario", help="scenario TOML file")
    parser.add_argument("--gateway", required=True, help="the gateway's base URL, e.g. "
                        "http://127.0.0.1:8000")
    parser.add_argument("--api-port", type=int, default=0,
                        help="port of the simulated Twilio REST API (default: any free port)")
    parser.add_argument("--mappings", help="check that every called number is routed by "
                        "these mappings (directory or file)")
    parser.add_argument("--voice-path", default="/twilio/voice",
                        help="the numbers' Voice URL path (default /twilio/voice)")
    parser.add_argument("--status-path", default="/twilio/status",
                        help="the numbers' status callback path (default /twilio/status)")
    parser.add_argument("--timeout", type=float, default=15.0,
                        help="webhook timeout in seconds (Twilio: 15)")
    args = parser.parse_args(argv)

    try:
        scenario = load_scenario(args.scenario, mappings=args.mappings)
    except ScenarioInvalid as exc:
        for error in exc.errors:
            print(f"gateway simulate: {error}", file=sys.stderr)
        return 2
    account_sid = os.environ.get("TWILIO_ACCOUNT_SID")
    auth_token = os.environ.get("TWILIO_AUTH_TOKEN")
    if not account_sid or not auth_token:
        print("gateway simulate: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN to the values the "
              "gateway uses", file=sys.stderr)
        return 2

    lock = threading.Lock()

    def echo(event: Event) -> None:
        with lock:
            print(json.dumps(event), flush=True)

    try:
        simulator = Simulator(args.gateway, account_sid=account_sid, auth_token=auth_token,
                              api_port=args.api_port, voice_path=args.voice_path,
                              status_path=args.status_path, webhook_timeout=args.timeout,
                              echo=echo)
    except OSError as exc:
        print(f"gateway simulate: cannot listen on port {args.api_port}: {exc.strerror}",
              file=sys.stderr)
        return 2
    with simulator:
        transcript = simulator.run(scenario)
    return 0 if transcript.ok else 1

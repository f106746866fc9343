"""Twilio conference events -> Plivo callbacks: latency and events per second, SQLite vs Redis.

Two gateways run side by side as `gateway serve` runs them (gunicorn + the job worker), one on
the SQLite store (the embedded default) and one on a real redis-server, both delivering to the
same customer app on loopback. Each phase creates 100 members first: 100 `/twilio/voice` calls
whose answer is `<Conference callbackUrl=...>` (10 rooms of 10), then sends the events Twilio
would send (signed, to /twilio/conference/events): a participant-join and a participant-leave
per member, each of which must produce one callback (ConferenceAction=enter / exit) at the app.

- quiet phase: 15 of the 100 members join and leave at 5 events/s, from one connection: the
  latency from sending Twilio's event to the callback's arrival at the app (p50, p99) when the
  gateway is mostly idle (where a polling queue shows its wait);
- paced phase: the 200 events at a steady rate below saturation (default 40/s): the same
  latency when the gateway is busy but keeping up;
- burst phase: the 200 events (all joins, then all leaves) as fast as 16 concurrent senders go:
  events per second = events / (last callback's arrival - first event sent), the rate one
  gateway machine sustains end to end, with the latency under that load.
- speech phase: the 100 members join (not measured), then each has `--spurts` talk spurts
  (a participant-speech-start and a participant-speech-stop each, as Twilio reports every talk
  spurt of every participant) in rooms where no member asked for floor events, from the burst's
  senders: CPU per speaker event, and its ratio to the burst's CPU per join or leave (one run).

Both stores get the same load; phases alternate between them (A B B A ...), fresh members each
time. CPU ms per event counts the gateway's whole process group (gunicorn: "web"; the job
worker; `gateway serve` itself), plus redis-server for Redis, and is split by process. Every
phase checks its callbacks: one enter and one exit per member, enter first, member IDs 1..10
in each room; anything else is reported.

The customer app (`--app`): by default `keepalive`, the benchmarks' HTTP/1.1 server
(`answer_server.py`), which keeps connections alive as a production app does, so the job
worker's callbacks reuse its pooled connections; each phase reports how many connections the
app accepted while its events ran. `tests` is the tests' werkzeug app, which closes every
connection, so each callback pays a TCP connect (the figures before 1 Dec 2026 used it). Both
record every callback for the checks.

`--profile` then runs one burst per store against a gateway whose web workers and job worker
run under cProfile, and prints where each side spends its CPU.

    .venv/bin/python -m benchmarks.bench_conference_events [--rounds 3] [--rate 40] [--profile]
        [--phases quiet paced burst speech] [--spurts 4] [--app keepalive|tests]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import io
import json
import pstats
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from twilio.request_validator import RequestValidator

from benchmarks.answer_server import AnswerServer
from benchmarks.empty_app import SERVE_FLAGS
from benchmarks.load import (
    Shot,
    closed_loop,
    group_cpu_by_role,
    group_cpu_seconds,
    paced,
    process_cpu_seconds,
    twilio_shot,
)
from benchmarks.servers import GunicornServer, QuietCustomerApp, profiled_gateway
from benchmarks.stats import median, percentile, ratio
from gateway.app_side.params import call_uuid
from gateway.translate.context import member_label
from gateway.translate.rooms import twilio_room_name
from tests.support.customer_app import RecordedRequest, Reply
from tests.support.gateway_server import (
    ACCOUNT_SID,
    APP_AUTH_TOKEN,
    AUTH_TOKEN,
    GatewayServer,
    app_config,
    twilio_call_params,
)
from tests.support.redis_server import RedisServer

ACCOUNT = "MA0000000000000001"  # app_config's default account
EVENTS = "/twilio/conference/events"
ACTION = {"participant-join": "enter", "participant-leave": "exit"}
PHASES = ("quiet", "paced", "burst", "speech")


@dataclass(frozen=True)
class Participant:
    call_sid: str
    call_uuid: str
    room: str
    conference_sid: str

    @property
    def label(self) -> str:
        # The participantLabel the gateway gave Twilio: the first document's Conference, step 1.
        return member_label(self.call_sid, 1)


class Callbacks:
    """What reached the app's callbackUrl: arrival time and parameters per (CallUUID, action)."""

    def __init__(self) -> None:
        self.arrived: dict[tuple[str, str], tuple[float, dict[str, str]]] = {}
        self.duplicates = 0
        self.condition = threading.Condition()

    def __call__(self, request: RecordedRequest) -> Reply:
        """The tests' app's handler."""
        self.record(request.params, request.received_at)
        return Reply("", status=200)

    def record(self, params: dict[str, str], received_at: float | None = None) -> str:
        """One callback's arrival (time.monotonic(), as the tests' app stamps it); the
        keep-alive app calls this with the form and answers what it returns (an empty 200)."""
        received_at = time.monotonic() if received_at is None else received_at
        key = (params.get("CallUUID", ""), params.get("ConferenceAction", ""))
        with self.condition:
            if key in self.arrived:
                self.duplicates += 1
            else:
                self.arrived[key] = (received_at, params)
            self.condition.notify_all()
        return ""

    def wait_for(self, keys: set[tuple[str, str]], timeout: float) -> set[tuple[str, str]]:
        """Wait until every key arrived or `timeout` passed; returns the keys still missing."""
        end = time.monotonic() + timeout
        with self.condition:
            while True:
                missing = keys - self.arrived.keys()
                left = end - time.monotonic()
                if not missing or left <= 0:
                    return missing
                self.condition.wait(min(left, 0.2))


class Backend:
    """One gateway (one store) under test: where to send, which processes are its, and what
    its phases measured."""

    def __init__(self, name: str, url: str, pgids: list[int], *, logs=lambda: "",
                 redis: RedisServer | None = None):
        self.name = name
        self.url = url
        self.pgids = pgids
        self.logs = logs
        self.redis = redis
        self.validator = RequestValidator(AUTH_TOKEN)
        self.phases: dict[str, list[dict]] = {kind: [] for kind in PHASES}
        self.latencies: dict[str, list[float]] = {kind: [] for kind in PHASES}
        self.sequence: Counter = Counter()

    @classmethod
    def of(cls, name: str, gateway: GatewayServer, redis: RedisServer | None = None) -> Backend:
        return cls(name, gateway.url, [gateway.process.pid], logs=gateway.logs, redis=redis)

    def cpu_seconds(self) -> Counter:
        """CPU seconds so far: gunicorn (web), the job worker, redis-server, the rest."""
        seconds: Counter = Counter()
        for pgid in self.pgids:
            seconds.update(group_cpu_by_role(pgid, process_role))
        if self.redis is not None and self.redis.pid:
            seconds["redis"] += process_cpu_seconds(self.redis.pid)
        return seconds

    def voice_shot(self, room_number: int, round_tag: int) -> tuple[Shot, str]:
        # The answer route reads the room from the caller's number (Plivo's From).
        params = twilio_call_params(from_=f"+1415{round_tag % 1000:03d}{room_number:04d}",
                                    call_sid="CA" + uuid.uuid4().hex)
        shot = twilio_shot(self.url, "/twilio/voice", params, self.validator)
        return shot, params["CallSid"]

    def event_shot(self, participant: Participant, name: str, tag: str = "") -> Shot:
        self.sequence[participant.conference_sid] += 1
        params = {
            "AccountSid": ACCOUNT_SID, "ConferenceSid": participant.conference_sid,
            "FriendlyName": twilio_room_name(ACCOUNT, participant.room),
            "StatusCallbackEvent": name, "CallSid": participant.call_sid,
            "SequenceNumber": str(self.sequence[participant.conference_sid]),
            "Timestamp": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
            "ParticipantLabel": participant.label, "Muted": "false", "Hold": "false",
            "Coaching": "false", "EndConferenceOnExit": "false",
            "StartConferenceOnEnter": "true"}
        if name == "participant-leave":
            params.update(ReasonParticipantLeft="participant_hung_up",
                          ParticipantCallStatus="completed")
        return twilio_shot(self.url, EVENTS, params, self.validator,
                           tag=f"{participant.call_uuid}|{ACTION.get(name, name)}|{tag}")


def process_role(cmdline: str) -> str:
    if "gunicorn" in cmdline:
        return "web"
    return "worker" if "worker" in cmdline else "serve"


def room_name(round_tag: int, room_number: int) -> str:
    return f"Bench room {round_tag}-{room_number}"


def answer_for(callback_url: str):
    """The app's answer to a call's params: the caller's room (from its number), with the
    member's callbackUrl."""
    def answer(params: dict[str, str]) -> str:
        number = params.get("From", "")
        round_tag, room_number = int(number[-7:-4]), int(number[-4:])
        return (f'<Response><Conference callbackUrl="{callback_url}" callbackMethod="POST">'
                f"{room_name(round_tag, room_number)}</Conference></Response>")
    return answer


def customer_app(kind: str, callbacks: Callbacks) -> QuietCustomerApp | AnswerServer:
    """The app both gateways fetch answers from and deliver callbacks to (`/answer`, `/cb`):
    `keepalive`, AnswerServer (HTTP/1.1, connections kept alive, as a production app would);
    `tests`, the tests' CustomerApp (werkzeug; closes each connection after one answer)."""
    if kind == "keepalive":
        app = AnswerServer()
        app.route("/answer", answer_for(app.url("/cb")))
        app.route("/cb", callbacks.record)
        return app
    tests_app = QuietCustomerApp(auth_token=APP_AUTH_TOKEN)
    answer = answer_for(tests_app.url("/cb"))
    tests_app.route("/answer", handler=lambda request: answer(request.params))
    tests_app.route("/cb", handler=callbacks)
    return tests_app


def app_connections(app: QuietCustomerApp | AnswerServer) -> int | None:
    """TCP connections the app has accepted so far (None: the tests' app does not count them;
    it takes one per request)."""
    if isinstance(app, AnswerServer):
        with app.lock:
            return app.connections
    return None


def create_members(backend: Backend, round_tag: int, members: int, rooms: int
                   ) -> list[Participant]:
    """`members` calls through /twilio/voice, each answered with a Conference (not timed)."""
    conference_sids = ["CF" + uuid.uuid4().hex for _ in range(rooms)]
    shots, participants = [], []
    for index in range(members):
        room_number = index % rooms
        shot, call_sid = backend.voice_shot(room_number, round_tag)
        shots.append(shot)
        participants.append(Participant(call_sid, call_uuid(call_sid),
                                        room_name(round_tag, room_number),
                                        conference_sids[room_number]))
    outcome = closed_loop(backend.url, shots, concurrency=8, time_limit=60,
                          check=lambda status, body: status == 200 and b"<Conference" in body)
    if outcome.ok != members:
        raise RuntimeError(f"{backend.name}: only {outcome.ok} of {members} calls got their "
                           f"Conference: {outcome.first_error}\n{backend.logs()[-2000:]}")
    return participants


def run_phase(backend: Backend, callbacks: Callbacks, kind: str, round_tag: int, args,
              app=None) -> dict:
    if kind == "speech":
        return run_speech_phase(backend, callbacks, round_tag, args)
    participants = create_members(backend, round_tag, args.members, args.rooms)
    if kind == "quiet":  # a few members come and go while the rest sit in the store
        participants = participants[:args.quiet_members]
    shots = [backend.event_shot(p, "participant-join") for p in participants]
    shots += [backend.event_shot(p, "participant-leave") for p in participants]
    expected = {tuple(s.tag.split("|")[:2]) for s in shots}
    cpu_before = backend.cpu_seconds()
    connections_before = app_connections(app) if app is not None else None
    if kind in ("quiet", "paced"):
        sent = paced(backend.url, shots, rate=args.quiet_rate if kind == "quiet" else args.rate,
                     time_limit=120, check=lambda status, body: status == 204)
    else:
        sent = closed_loop(backend.url, shots, concurrency=args.concurrency,
                           time_limit=120, check=lambda status, body: status == 204)
    missing = callbacks.wait_for(expected, timeout=args.drain_timeout)
    cpu = backend.cpu_seconds()
    cpu.subtract(cpu_before)
    connections_after = app_connections(app) if app is not None else None
    with callbacks.condition:
        arrived = {key: callbacks.arrived[key] for key in expected if key in callbacks.arrived}
    latencies = [arrived[key][0] - sent.sent_at["|".join(key) + "|"] for key in arrived]
    first_sent = min(sent.sent_at.values())
    span = max(at for at, _ in arrived.values()) - first_sent if arrived else float("nan")
    problems = check_callbacks(participants, arrived, args.rooms)
    if missing:
        problems.append(f"{len(missing)} callbacks never arrived within {args.drain_timeout} s")
    if sent.errors:
        problems.append(f"{sent.errors} events not answered 204: {sent.first_error}")
    backend.latencies[kind].extend(latencies)
    result = {"events": len(shots), "callbacks": len(arrived), "span_s": span,
              "events_per_s": len(arrived) / span if span else float("nan"),
              "webhook_rps": sent.throughput,
              "webhook_p50_ms": 1000 * percentile(sent.latencies, 50),
              "callback_p50_ms": 1000 * percentile(latencies, 50),
              "callback_p99_ms": 1000 * percentile(latencies, 99),
              "cpu_ms_per_event": 1000 * sum(cpu.values()) / max(1, len(arrived)),
              "cpu_ms_per_event_by_role": {role: 1000 * seconds / max(1, len(arrived))
                                           for role, seconds in sorted(cpu.items())},
              # Connections the app accepted while the phase's callbacks were delivered: a
              # handful when the job worker keeps them alive, one per callback when it does not.
              "app_connections": (None if connections_before is None
                                  else connections_after - connections_before),
              "problems": problems}
    backend.phases[kind].append(result)
    return result


def run_speech_phase(backend: Backend, callbacks: Callbacks, round_tag: int, args) -> dict:
    """Speaker events in rooms where no member asked for floor events (Plivo's default): the
    members join (not measured), then each has `--spurts` talk spurts, a speech-start and a
    speech-stop each, from the burst's concurrent senders; then they leave (not measured).
    CPU per speaker event is the figure, next to the burst's CPU per join or leave."""
    participants = create_members(backend, round_tag, args.members, args.rooms)
    missing: list[str] = []

    def send(shots: list[Shot], action: str) -> None:
        closed_loop(backend.url, shots, concurrency=args.concurrency, time_limit=120,
                    check=lambda status, body: status == 204)
        late = callbacks.wait_for({(p.call_uuid, action) for p in participants},
                                  args.drain_timeout)
        if late:
            missing.append(f"{len(late)} {action} callbacks never arrived within "
                           f"{args.drain_timeout} s")
        time.sleep(0.5)  # the job worker strikes off its last flushes: not the speech's CPU

    send([backend.event_shot(p, "participant-join") for p in participants], "enter")
    shots = [backend.event_shot(p, name, tag=str(spurt)) for spurt in range(args.spurts)
             for p in participants
             for name in ("participant-speech-start", "participant-speech-stop")]
    cpu_before = backend.cpu_seconds()
    sent = closed_loop(backend.url, shots, concurrency=args.concurrency, time_limit=120,
                       check=lambda status, body: status == 204)
    cpu = backend.cpu_seconds()
    cpu.subtract(cpu_before)
    send([backend.event_shot(p, "participant-leave") for p in participants], "exit")
    with callbacks.condition:
        floors = sum((p.call_uuid, "floor") in callbacks.arrived for p in participants)
    problems = [f"{floors} floor callbacks although nobody asked for them"] if floors else []
    problems += missing
    if sent.errors:
        problems.append(f"{sent.errors} events not answered 204: {sent.first_error}")
    result = {"events": len(shots), "webhook_rps": sent.throughput,
              "webhook_p50_ms": 1000 * percentile(sent.latencies, 50),
              "webhook_p99_ms": 1000 * percentile(sent.latencies, 99),
              "cpu_ms_per_event": 1000 * sum(cpu.values()) / len(shots),
              "cpu_ms_per_event_by_role": {role: 1000 * seconds / len(shots)
                                           for role, seconds in sorted(cpu.items())},
              "events_per_s": sent.throughput, "callback_p50_ms": float("nan"),
              "callback_p99_ms": float("nan"), "problems": problems}
    backend.phases["speech"].append(result)
    return result


def check_callbacks(participants: list[Participant], arrived: dict, rooms: int) -> list[str]:
    """One enter and one exit per member, enter first; member IDs 1..n in each room."""
    problems = []
    ids: dict[str, list[int]] = defaultdict(list)
    for p in participants:
        enter, exit_ = arrived.get((p.call_uuid, "enter")), arrived.get((p.call_uuid, "exit"))
        if enter and exit_ and enter[0] > exit_[0]:
            problems.append(f"exit before enter for {p.call_sid}")
        if enter:
            ids[p.room].append(int(enter[1].get("ConferenceMemberID") or 0))
    for room, numbers in ids.items():
        if sorted(numbers) != list(range(1, len(numbers) + 1)):
            problems.append(f"{room}: member IDs {sorted(numbers)}")
    return problems


def latency_summary(backend: Backend, kind: str) -> dict:
    ms = [1000 * s for s in backend.latencies[kind]]
    return {"phases": backend.phases[kind], "callbacks": len(ms),
            "p50_ms": percentile(ms, 50), "p90_ms": percentile(ms, 90),
            "p99_ms": percentile(ms, 99), "max_ms": max(ms, default=0.0)}


def summarize(backend: Backend) -> dict:
    burst_ms = [1000 * s for s in backend.latencies["burst"]]
    speech = backend.phases["speech"]
    return {
        "speech": {"phases": speech,
                   "median_webhook_rps": median([p["webhook_rps"] for p in speech]),
                   "webhook_p50_ms": median([p["webhook_p50_ms"] for p in speech]),
                   "median_cpu_ms_per_event": median([p["cpu_ms_per_event"] for p in speech]),
                   "median_cpu_ms_per_event_by_role": {
                       role: median([p["cpu_ms_per_event_by_role"].get(role, 0.0)
                                     for p in speech])
                       for role in (speech[0]["cpu_ms_per_event_by_role"] if speech else ())},
                   "over_burst_cpu": ratio(
                       median([p["cpu_ms_per_event"] for p in speech]),
                       median([p["cpu_ms_per_event"] for p in backend.phases["burst"]]))},
        "quiet": latency_summary(backend, "quiet"),
        "paced": latency_summary(backend, "paced"),
        "burst": {"phases": backend.phases["burst"], "callbacks": len(burst_ms),
                  "median_events_per_s": median([p["events_per_s"]
                                                 for p in backend.phases["burst"]]),
                  "median_webhook_rps": median([p["webhook_rps"]
                                                for p in backend.phases["burst"]]),
                  "p50_ms": percentile(burst_ms, 50), "p99_ms": percentile(burst_ms, 99),
                  "app_connections": [p.get("app_connections")
                                      for p in backend.phases["burst"]],
                  "median_cpu_ms_per_event": median([p["cpu_ms_per_event"]
                                                     for p in backend.phases["burst"]]),
                  "median_cpu_ms_per_event_by_role": {
                      role: median([p["cpu_ms_per_event_by_role"].get(role, 0.0)
                                    for p in backend.phases["burst"]])
                      for role in (backend.phases["burst"][0]["cpu_ms_per_event_by_role"]
                                   if backend.phases["burst"] else ())}},
        "problems": [problem for kind in PHASES for phase in backend.phases[kind]
                     for problem in phase["problems"]],
    }


def compare(args, workdir: Path) -> dict:
    callbacks = Callbacks()
    with customer_app(args.app, callbacks) as app, RedisServer(workdir / "redis") as redis:
        apps = [app_config(app.url("/answer"))]
        sqlite_gw = GatewayServer(workdir / "sqlite", apps=apps)
        redis_gw = GatewayServer(workdir / "redis-gw", apps=apps, store_url=redis.url())
        with sqlite_gw, redis_gw:
            backends = [Backend.of("sqlite", sqlite_gw), Backend.of("redis", redis_gw, redis)]
            tag = 0
            for backend in backends:  # warm-up: workers, pools, store files; not kept
                tag += 1
                warm = argparse.Namespace(**{**vars(args), "members": 20})
                run_phase(backend, callbacks, "burst", tag, warm)
                backend.phases["burst"].clear()
                backend.latencies["burst"].clear()
            for index in range(args.rounds):
                order = backends if index % 2 == 0 else backends[::-1]
                for kind in args.phases:
                    for backend in order:
                        tag += 1
                        phase = run_phase(backend, callbacks, kind, tag, args, app)
                        app.clear()
                        connections = phase.get("app_connections")
                        print(f"  round {index + 1} {kind:<6} {backend.name:<6} "
                              f"{phase['events_per_s']:6.1f} events/s  callback p50 "
                              f"{phase['callback_p50_ms']:6.1f} ms  p99 "
                              f"{phase['callback_p99_ms']:7.1f} ms  CPU "
                              f"{phase['cpu_ms_per_event']:5.2f} ms/event"
                              + (f"  app connections {connections}"
                                 if connections is not None else "")
                              + (f"  PROBLEMS: {phase['problems']}" if phase["problems"] else
                                 ""), flush=True)
            floor = (empty_app_floor(args, workdir, backends[0], round_tag=tag + 1)
                     if "speech" in args.phases else [])
            duplicates = callbacks.duplicates
            profile = (run_profiles(args, workdir, apps, redis, callbacks, tag, app)
                       if args.profile else None)
    sqlite, redis_result = (summarize(b) for b in backends)
    return {"benchmark": "conference_events", "profile_top": profile, "rounds": args.rounds,
            "members": args.members, "rooms": args.rooms, "paced_rate": args.rate,
            "quiet_rate": args.quiet_rate, "quiet_members": args.quiet_members,
            "concurrency": args.concurrency, "spurts": args.spurts, "app": args.app,
            "sqlite": sqlite, "redis": redis_result, "duplicate_callbacks": duplicates,
            "empty_app_cpu_ms_per_request": floor,
            "median_empty_app_cpu_ms_per_request": median(floor) if floor else float("nan"),
            "redis_over_sqlite_events_per_s": ratio(
                redis_result["burst"]["median_events_per_s"],
                sqlite["burst"]["median_events_per_s"])}


def empty_app_floor(args, workdir: Path, backend: Backend, round_tag: int) -> list[float]:
    """CPU ms per request of `empty_app` (a 204 and nothing else) under `gateway serve`'s
    gunicorn settings, for the speech phase's requests, once per round: what any webhook costs
    here before the gateway does anything, set beside a speaker event's cost."""
    participants = []
    for n in range(args.members):
        call_sid = "CA" + uuid.uuid4().hex
        participants.append(Participant(call_sid=call_sid, call_uuid=call_uuid(call_sid),
                                        room=room_name(round_tag, n % args.rooms),
                                        conference_sid="CF" + uuid.uuid4().hex))
    figures = []
    with GunicornServer(workdir / "empty-app", "benchmarks.empty_app:app", env={},
                        extra=SERVE_FLAGS, name="empty-app") as server:
        target = Backend("empty-app", server.url, [server.process.pid])
        for _ in range(args.rounds):
            shots = [target.event_shot(p, name, tag=str(spurt)) for spurt in range(args.spurts)
                     for p in participants
                     for name in ("participant-speech-start", "participant-speech-stop")]
            before = group_cpu_seconds(server.process.pid)
            closed_loop(server.url, shots, concurrency=args.concurrency, time_limit=120,
                        check=lambda status, body: status == 204)
            figures.append(1000 * (group_cpu_seconds(server.process.pid) - before) / len(shots))
    return figures


def run_profiles(args, workdir: Path, apps: list[dict], redis: RedisServer,
                 callbacks: Callbacks, tag: int, app) -> str:
    """One burst phase per store against a gateway whose web workers and job worker run under
    cProfile (CPU clock); the top functions of each side."""
    out = io.StringIO()
    for name, store_url in (("sqlite", None), ("redis", redis.url(db=1))):
        profile_dir = workdir / f"profile-{name}"
        config = GatewayServer(workdir / f"profiled-{name}", apps=apps, store_url=store_url)
        web = profiled_gateway(config, profile_dir)
        with (config.workdir / "jobworker.log").open("ab") as log:
            worker = subprocess.Popen([sys.executable, "-m", "benchmarks.profile_worker"],
                                      env=web.env, cwd=config.workdir, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        try:
            with web:
                backend = Backend(f"{name}-profiled", web.url, [web.process.pid, worker.pid],
                                  redis=redis if store_url else None)
                phase = run_phase(backend, callbacks, "burst", tag + 1, args, app)
                tag += 1
        finally:
            worker.send_signal(signal.SIGINT)  # huey: stop gracefully, then the dump
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
        out.write(f"=== {name}: profiled burst of {phase['events']} events "
                  f"({phase['events_per_s']:.1f} events/s under the profiler)\n")
        for side, pattern in (("web workers (gunicorn)", "worker-*.prof"),
                              ("job worker (huey)", "jobworker-*.prof")):
            files = sorted(str(p) for p in profile_dir.glob(pattern))
            if not files:
                out.write(f"--- {side}: no profile written\n")
                continue
            out.write(f"--- {side}\n")
            stats = pstats.Stats(*files, stream=out)
            stats.strip_dirs()
            stats.sort_stats("tottime").print_stats(15)
            stats.sort_stats("cumulative").print_stats(30)
    return out.getvalue()


def cpu_by_process(result: dict, phase: str, figure: str) -> list[str]:
    """A phase's median CPU per event split by process, a line per store."""
    return [f"  {figure} of {name} by process: " + ", ".join(
        f"{role} {ms:.2f}" for role, ms in
        result[name][phase]["median_cpu_ms_per_event_by_role"].items())
        for name in ("sqlite", "redis")]


def report(result: dict) -> str:
    lines = [f"conference events -> callbacks: {result['members']} members in "
             f"{result['rooms']} rooms per phase, {result['rounds']} rounds, stores interleaved, "
             f"{result['app']} customer app",
             "latency from Twilio's event to the app's callback:",
             f"  {'phase':<28} {'store':<7} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
             f"{'max ms':>8} {'callbacks':>10}"]
    for kind, title in (("quiet", f"quiet: {result['quiet_members']} members, "
                                  f"{result['quiet_rate']:g} ev/s"),
                        ("paced", f"paced: {result['members']} members, "
                                  f"{result['paced_rate']:g} ev/s")):
        for name in ("sqlite", "redis"):
            row = result[name][kind]
            lines.append(f"  {title:<28} {name:<7} {row['p50_ms']:>8.1f} {row['p90_ms']:>8.1f} "
                         f"{row['p99_ms']:>8.1f} {row['max_ms']:>8.1f} {row['callbacks']:>10}")
    lines += [f"burst, {result['concurrency']} concurrent senders (sustained rate, end to end):",
              f"  {'store':<7} {'events/s':>9} {'webhook/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'CPU ms/event':>13} {'callbacks':>10}"]
    for name in ("sqlite", "redis"):
        row = result[name]["burst"]
        lines.append(f"  {name:<7} {row['median_events_per_s']:>9.1f} "
                     f"{row['median_webhook_rps']:>10.1f} {row['p50_ms']:>8.1f} "
                     f"{row['p99_ms']:>8.1f} {row['median_cpu_ms_per_event']:>13.2f} "
                     f"{row['callbacks']:>10}")
    lines += cpu_by_process(result, "burst", "CPU ms/event")
    if result["app"] == "keepalive":
        lines.append("  connections the app accepted per burst (sqlite; redis): "
                     f"{result['sqlite']['burst']['app_connections']}; "
                     f"{result['redis']['burst']['app_connections']}")
    if any(result[name]["speech"]["phases"] for name in ("sqlite", "redis")):
        lines += [f"speaker events, nobody asked for floor events ({result['spurts']} talk "
                  f"spurts per member: start + stop), {result['concurrency']} senders:",
                  f"  {'store':<7} {'events/s':>9} {'p50 ms':>8} {'CPU ms/event':>13} "
                  f"{'vs a join/leave':>16}"]
        for name in ("sqlite", "redis"):
            row = result[name]["speech"]
            lines.append(f"  {name:<7} {row['median_webhook_rps']:>9.1f} "
                         f"{row['webhook_p50_ms']:>8.1f} {row['median_cpu_ms_per_event']:>13.2f} "
                         f"{row['over_burst_cpu']:>16.2f}")
        lines.append("  the same requests to an app that only answers 204 (empty_app.py), same "
                     f"gunicorn settings: {result['median_empty_app_cpu_ms_per_request']:.2f} "
                     "CPU ms/request")
        lines += cpu_by_process(result, "speech", "speaker event CPU ms")
    lines.append(f"redis/sqlite sustained events/s: {result['redis_over_sqlite_events_per_s']:.2f}"
                 f"; duplicate callbacks: {result['duplicate_callbacks']}")
    for name in ("sqlite", "redis"):
        if result[name]["problems"]:
            lines.append(f"PROBLEMS ({name}): {result[name]['problems']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds (each: a quiet, a paced "
                        "and a burst phase per store)")
    parser.add_argument("--members", type=int, default=100, help="members per phase")
    parser.add_argument("--rooms", type=int, default=10, help="rooms they are spread over")
    parser.add_argument("--rate", type=float, default=40.0, help="events/s of the paced phase")
    parser.add_argument("--quiet-rate", type=float, default=5.0,
                        help="events/s of the quiet phase")
    parser.add_argument("--quiet-members", type=int, default=15,
                        help="members that join and leave in the quiet phase")
    parser.add_argument("--phases", nargs="+", choices=PHASES, default=list(PHASES),
                        help="which phases to run (default: all)")
    parser.add_argument("--spurts", type=int, default=4,
                        help="talk spurts per member in the speech phase")
    parser.add_argument("--concurrency", type=int, default=16, help="senders in the burst")
    parser.add_argument("--drain-timeout", type=float, default=90.0,
                        help="longest wait for a phase's callbacks (s)")
    parser.add_argument("--profile", action="store_true",
                        help="then profile a burst per store (web and job worker)")
    parser.add_argument("--app", choices=("keepalive", "tests"), default="keepalive",
                        help="customer app: a keep-alive one (benchmarks/answer_server.py; "
                        "default) or the tests' CustomerApp (closes every connection)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-conference-") as tmp:
        result = compare(args, Path(tmp))
    print(report(result))
    if result["profile_top"]:
        print(result["profile_top"])
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

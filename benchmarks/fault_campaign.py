"""The fault campaign of issue 9: real processes on loopback, one fault at a time, invariants
checked, one table row per fault.

Each fault runs its own stack: the gateway as the README runs it (`gateway serve`: gunicorn's
gevent web workers, the job worker, the side-stream child; `tests/support/gateway_server.py`),
a customer app that records every request it gets (`tests/support/customer_app.py`: the answer
URL gives `<Conference callbackUrl=...>`, the callbacks and the hangup URL are recorded), and
"Twilio": one thread per caller that sends, signed as Twilio signs them, the voice webhook, the
member's participant-join and participant-leave and the call's final status callback (half of
the callers report the end before the leave, as Twilio often does). Like Twilio, it waits 15 s
for an answer, opens a connection per webhook and never retries one (status callbacks are not
retried by default).

The faults:
- `sigkill`: SIGKILL of a gunicorn web worker and of the job worker, alternately, every few
  seconds, during a scenario of 100 members (gunicorn starts a new web worker; `gateway serve`
  starts the job worker again).
- `redis`: the Redis store (`appendonly yes`) stopped (alternately gracefully and with SIGKILL)
  and started again several times during the scenario.
- `flapping`: the customer app behind a front that cycles healthy / refusing connections /
  answering 500 / hanging every few seconds. Callbacks that exhausted their retries must be in
  `gateway deliveries --failed` with a reason; the campaign then replays them.
- `disk`: the SQLite store's directory (store, job queue and event spool) on a 2 MB tmpfs that
  is filled up mid-scenario and freed again (needs root for `mount`; without it the fault
  reports that it could not run).

Invariants, per fault: Twilio never gets a 5xx nor waits past 15 s; every voice webhook is
answered with the app's XML or the spoken apology; for every Twilio event the gateway
acknowledged (204), the app gets its callback exactly once (duplicates are counted); per call
the app sees Plivo's order (answer, enter, exit, hangup); nothing is left pending at the end (no
callback in an outbox, no job booked, nothing spooled). A webhook whose connection died with a
killed web worker was not acknowledged: it is counted, not expected.

    .venv/bin/python -m benchmarks.fault_campaign [--quick] [--only NAME] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests
from twilio.request_validator import RequestValidator

from gateway.app_side.params import call_uuid
from gateway.state import open_store
from gateway.translate.context import member_label
from gateway.translate.rooms import twilio_room_name
from tests.support.customer_app import CustomerApp, RecordedRequest, Reply
from tests.support.gateway_server import (
    ACCOUNT_SID,
    APP_AUTH_TOKEN,
    AUTH_TOKEN,
    GatewayServer,
    app_config,
    free_port,
    twilio_call_params,
)
from tests.support.redis_server import RedisServer

ACCOUNT = "MA0000000000000001"  # app_config's default account
TWILIO_WAIT = 15.0  # Twilio gives up on a webhook after 15 s (error 11205)
BUDGET = 13.0  # the gateway's default webhook budget
ORDER = ("answer", "enter", "exit", "hangup")  # Plivo's order for one call here
APOLOGY_HEADER = "Gateway-Call-Failed"


# -- the customer app ---------------------------------------------------------------------------

class AppLog:
    """What reached the customer app, per call (CallUUID): the kinds in arrival order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_call: dict[str, list[str]] = defaultdict(list)
        self.bad_signatures = 0

    def record(self, request: RecordedRequest, kind: str) -> None:
        with self.lock:
            self.by_call[request.params.get("CallUUID", "?")].append(kind)
            if not request.signatures_valid:
                self.bad_signatures += 1

    def seen(self, call: str) -> list[str]:
        with self.lock:
            return list(self.by_call.get(call, ()))


def room_of(plivo_from: str) -> int:
    return int(plivo_from[-4:])


def start_app(log: AppLog, base_url: Callable[[], str]) -> CustomerApp:
    """The customer's Plivo app: a room per caller's number; callbacks and hangups recorded.
    `base_url()` is where the gateway reaches it (the app itself, or the flapping front)."""
    app = CustomerApp(auth_token=APP_AUTH_TOKEN)

    def answer(request: RecordedRequest) -> str:
        log.record(request, "answer")
        room = room_of(request.params.get("From", "0000"))
        return (f'<Response><Conference callbackUrl="{base_url()}/cb" callbackMethod="POST">'
                f"Fault room {room}</Conference></Response>")

    def callback(request: RecordedRequest) -> Reply:
        log.record(request, request.params.get("ConferenceAction", "?"))
        return Reply("", status=200)

    def hangup(request: RecordedRequest) -> Reply:
        log.record(request, "hangup")
        return Reply("", status=200)

    app.route("/answer", handler=answer)
    app.route("/cb", handler=callback)
    app.route("/hangup", handler=hangup)
    return app.start()


class FlappingFront:
    """A TCP front for the customer app whose behaviour changes on command:
    `healthy` relays to the app; `refusing`: nothing listens (connection refused); `failing`:
    answers 500 itself; `hanging`: takes the request and never answers. Leaving a mode cuts the
    connections it holds, so a kept-alive connection does not carry one mode into the next."""

    MODES = ("healthy", "refusing", "failing", "hanging")

    def __init__(self, app_port: int):
        self.app_port = app_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.mode = "healthy"
        self.changes = Counter()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._listen()

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(256)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:  # closed: refusing, or stopped
                return
            with self._lock:
                mode = self.mode
                self._open.add(conn)
            threading.Thread(target=self._serve, args=(conn, mode), daemon=True).start()

    def set_mode(self, mode: str) -> None:
        with self._lock:
            if mode == self.mode:
                return
            previous, self.mode = self.mode, mode
            held, self._open = self._open, set()
            self.changes[mode] += 1
        for conn in held:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if mode == "refusing" and self._listener is not None:
            self._listener.close()
            self._listener = None
        elif previous == "refusing":
            self._listen()

    def stop(self) -> None:
        self.set_mode("refusing")

    def _serve(self, conn: socket.socket, mode: str) -> None:
        try:
            if mode == "healthy":
                self._relay(conn)
            elif mode == "failing":
                conn.settimeout(5)
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n"
                             b"Connection: close\r\n\r\n")
            else:  # hanging: read whatever comes, answer nothing, until cut or given up on
                conn.settimeout(60)
                while conn.recv(65536):
                    pass
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(conn)
            conn.close()

    def _relay(self, conn: socket.socket) -> None:
        with socket.create_connection(("127.0.0.1", self.app_port), timeout=5) as upstream:
            with self._lock:
                self._open.add(upstream)
            try:
                pair = {conn: upstream, upstream: conn}
                while True:
                    ready, _, _ = select.select(list(pair), [], [], 60)
                    if not ready:
                        return
                    for source in ready:
                        data = source.recv(65536)
                        if not data:
                            return
                        pair[source].sendall(data)
            finally:
                with self._lock:
                    self._open.discard(upstream)


# -- Twilio's side ------------------------------------------------------------------------------

@dataclass
class Webhook:
    kind: str  # voice, join, leave, status
    call: str  # CallUUID
    status: int | None
    seconds: float
    error: str = ""  # "timeout" or the connection error
    apology: str = ""  # the answer is the gateway's apology: why (its Gateway-Call-Failed)
    conference: bool = False  # the answer joins the caller to the app's conference

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Twilio:
    """Signs and sends webhooks as Twilio does, and keeps every answer."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.validator = RequestValidator(AUTH_TOKEN)
        self.lock = threading.Lock()
        self.webhooks: list[Webhook] = []
        self.sequence: Counter = Counter()

    def post(self, path: str, params: dict[str, str], kind: str) -> Webhook:
        url = self.base_url + path
        headers = {"X-Twilio-Signature": self.validator.compute_signature(url, params),
                   "User-Agent": "TwilioProxy/1.1", "Connection": "close",
                   "I-Twilio-Idempotency-Token": uuid.uuid4().hex}
        started = time.monotonic()
        status, error, apology, body = None, "", "", b""
        try:
            response = requests.post(url, data=params, headers=headers, timeout=TWILIO_WAIT)
            status, body = response.status_code, response.content
            apology = response.headers.get(APOLOGY_HEADER, "")
        except requests.Timeout:
            error = "timeout"
        except requests.ConnectionError as exc:
            error = f"connection: {type(exc).__name__}"
        webhook = Webhook(kind, call_uuid(params["CallSid"]), status,
                          time.monotonic() - started, error, apology,
                          status == 200 and not apology and b"<Conference" in body)
        with self.lock:
            self.webhooks.append(webhook)
        return webhook

    def next_sequence(self, conference_sid: str) -> str:
        with self.lock:
            self.sequence[conference_sid] += 1
            return str(self.sequence[conference_sid])


@dataclass
class Caller:
    params: dict[str, str]
    room: int
    conference_sid: str
    hold: float
    ends_first: bool  # Twilio reports the call's end before the member's leave
    webhooks: dict[str, Webhook] = field(default_factory=dict)

    @property
    def uuid(self) -> str:
        return call_uuid(self.params["CallSid"])


def conference_event(twilio: Twilio, caller: Caller, name: str) -> Webhook:
    params = {"AccountSid": ACCOUNT_SID, "ConferenceSid": caller.conference_sid,
              "FriendlyName": twilio_room_name(ACCOUNT, f"Fault room {caller.room}"),
              "StatusCallbackEvent": name, "CallSid": caller.params["CallSid"],
              "SequenceNumber": twilio.next_sequence(caller.conference_sid),
              "Timestamp": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
              "ParticipantLabel": member_label(caller.params["CallSid"], 1), "Muted": "false",
              "Hold": "false", "Coaching": "false", "EndConferenceOnExit": "false",
              "StartConferenceOnEnter": "true"}
    if name == "participant-leave":
        params.update(ReasonParticipantLeft="participant_hung_up",
                      ParticipantCallStatus="completed")
    return twilio.post("/twilio/conference/events", params,
                       "join" if name == "participant-join" else "leave")


def call_ends(twilio: Twilio, caller: Caller) -> Webhook:
    params = dict(caller.params, CallStatus="completed", CallDuration=str(int(caller.hold) + 1),
                  Timestamp=time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()))
    return twilio.post("/twilio/status", params, "status")


def live(twilio: Twilio, caller: Caller) -> None:
    """One caller's call as Twilio reports it."""
    caller.webhooks["voice"] = voice = twilio.post("/twilio/voice", caller.params, "voice")
    if voice.conference:
        time.sleep(0.3)
        caller.webhooks["join"] = conference_event(twilio, caller, "participant-join")
        time.sleep(caller.hold)
        if caller.ends_first:
            caller.webhooks["status"] = call_ends(twilio, caller)
            caller.webhooks["leave"] = conference_event(twilio, caller, "participant-leave")
        else:
            caller.webhooks["leave"] = conference_event(twilio, caller, "participant-leave")
            caller.webhooks["status"] = call_ends(twilio, caller)
    else:  # the apology (or no answer): the call ends at once
        time.sleep(0.5)
        caller.webhooks["status"] = call_ends(twilio, caller)


def callers(count: int, rooms: int, hold: tuple[float, float], rng: random.Random
            ) -> list[Caller]:
    conference_sids = ["CF" + uuid.uuid4().hex for _ in range(rooms)]
    made = []
    for index in range(count):
        room = index % rooms
        params = twilio_call_params(from_=f"+1415555{room:04d}")
        made.append(Caller(params, room, conference_sids[room], rng.uniform(*hold),
                           ends_first=rng.random() < 0.5))
    return made


def run_callers(twilio: Twilio, group: list[Caller], spread: float) -> None:
    """Start the callers evenly over `spread` seconds; return when every call has ended."""
    threads = []
    for index, caller in enumerate(group):
        time.sleep(spread / max(1, len(group)) if index else 0)
        thread = threading.Thread(target=live, args=(twilio, caller), daemon=True)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join(timeout=120)


# -- what the gateway holds ---------------------------------------------------------------------

def pending(store_url: str, details: list[str] | None = None) -> dict[str, int]:
    """What the shared store still has to do: callbacks in outboxes, jobs booked, and failed
    deliveries kept (read from the store itself, as `gateway deliveries` does). `details`
    receives a line per outbox and job left."""
    store = open_store(store_url)
    outbox = jobs = 0
    try:
        for key, box in store.scan("outbox:"):
            if box.get("items"):
                outbox += len(box["items"])
                if details is not None:
                    details.append(f"{key}: done {box.get('done')}, items "
                                   f"{ {n: i.get('kind') for n, i in box['items'].items()} }")
        for key, job in store.scan("job:"):
            jobs += 1
            if details is not None:
                details.append(f"{key}: due {job.get('due_at', 0) - time.time():+.1f} s, lease "
                               f"{job.get('lease_until', 0) - time.time():+.1f} s, owner "
                               f"{job.get('owner')}, failures {job.get('failures', 0)}")
        failed = sum(1 for _ in store.scan("failed:"))
    finally:
        with contextlib.suppress(Exception):
            store.close()
    return {"outbox": outbox, "jobs": jobs, "failed": failed}


def spooled(gateway: GatewayServer) -> int:
    """Events in this machine's spool (the gateway's /metrics gauge)."""
    for attempt in range(5):  # the web worker that took the probe may just have been killed
        try:
            text = requests.get(gateway.url + "/metrics", timeout=10).text
            break
        except requests.ConnectionError:
            if attempt == 4:
                raise
            time.sleep(0.5)
    found = re.search(r"^gateway_spooled_events (\S+)$", text, re.MULTILINE)
    return int(float(found.group(1))) if found else 0


def failed_deliveries(gateway: GatewayServer) -> list[dict]:
    result = subprocess.run([sys.executable, "-m", "gateway.cli", "deliveries", "--failed"],
                            env=gateway.env, cwd=gateway.workdir, capture_output=True,
                            text=True, timeout=60)
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def replay(gateway: GatewayServer, failure_id: str) -> bool:
    result = subprocess.run([sys.executable, "-m", "gateway.cli", "deliveries", "--replay",
                             failure_id], env=gateway.env, cwd=gateway.workdir,
                            capture_output=True, text=True, timeout=60)
    return result.returncode == 0


def failure_kind(record: dict) -> tuple[str, str]:
    request = record.get("request", {})
    params = request.get("params", {})
    kind = "hangup" if request.get("kind") == "hangup" else params.get("ConferenceAction", "?")
    return params.get("CallUUID", "?"), kind


def group_pids(gateway: GatewayServer) -> dict[str, list[int]]:
    """The gateway's processes by role: the gunicorn master, its web workers, the job worker."""
    roles: dict[str, list[int]] = defaultdict(list)
    processes = gateway.group_processes()
    parents = {}
    for pid in processes:
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            parents[pid] = int(stat[stat.rindex(")") + 2:].split()[1])
    for pid, cmdline in processes.items():
        if "gunicorn" in cmdline:
            is_master = parents.get(pid) == gateway.process.pid
            roles["master" if is_master else "web"].append(pid)
        elif "gateway.cli worker" in cmdline:
            roles["worker"].append(pid)
    return roles


# -- the checks ---------------------------------------------------------------------------------

@dataclass
class Verdict:
    fault: str
    action: str = ""  # what the fault did, e.g. "12 SIGKILLs (6 web, 6 worker)"
    calls: int = 0
    conference_calls: int = 0
    apologies: int = 0
    webhooks: int = 0
    slowest: float = 0.0
    server_errors: int = 0
    timeouts: int = 0
    connection_errors: int = 0
    callbacks_expected: int = 0
    callbacks_delivered: int = 0
    callbacks_failed: int = 0
    callbacks_replayed: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    left_pending: dict = field(default_factory=dict)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def expected_kinds(caller: Caller, *, hangup_for_apology: bool) -> tuple[set[str], set[str]]:
    """(what the app must get for this call, what it may get) from what the gateway
    acknowledged."""
    hooks = caller.webhooks
    acked = {kind for kind, hook in hooks.items() if hook.acknowledged}
    voice = hooks.get("voice")
    must: set[str] = set()
    may: set[str] = {"answer", "hangup"}
    if voice and voice.conference:
        must.add("answer")
        if {"join", "leave"} & acked:  # a leave completes a join the gateway never saw
            must.add("enter")
        if "leave" in acked:
            must.add("exit")
        if "status" in acked:
            must.add("hangup")
        # An event whose connection died may have been processed before it died.
        may |= {"enter", "exit"}
    elif ("status" in acked and hangup_for_apology and voice and voice.acknowledged
          and voice.apology != "store-unavailable"):
        # The gateway keeps the record of a call whose app failed, for its hangup request;
        # a call it could not record (the store down) has none.
        must.add("hangup")
    return must, may | must


def check(verdict: Verdict, twilio: Twilio, group: list[Caller], log: AppLog, *,
          hangup_for_apology: bool = True, failed: dict[tuple[str, str], int] | None = None,
          duplicates_expected: bool = False) -> None:
    """Fill `verdict` with what Twilio and the app saw, and what breaks an invariant.
    `duplicates_expected`: delivery is at least once, so a job worker killed (or a store lost)
    between the app's answer and the record of it delivers that callback again; such
    duplicates are counted, not failed."""
    failed = failed or {}
    hooks = twilio.webhooks
    verdict.calls = len(group)
    verdict.webhooks = len(hooks)
    verdict.slowest = max((h.seconds for h in hooks), default=0.0)
    verdict.server_errors = sum(1 for h in hooks if h.status is not None and h.status >= 500)
    verdict.timeouts = sum(1 for h in hooks if h.error == "timeout" or h.seconds > TWILIO_WAIT)
    verdict.connection_errors = sum(1 for h in hooks if h.error.startswith("connection"))
    verdict.conference_calls = sum(1 for c in group if c.webhooks.get("voice")
                                   and c.webhooks["voice"].conference)
    verdict.apologies = sum(1 for c in group if c.webhooks.get("voice")
                            and c.webhooks["voice"].apology)
    if verdict.server_errors:
        verdict.problems.append(f"{verdict.server_errors} webhooks answered 5xx")
    if verdict.timeouts:
        verdict.problems.append(f"{verdict.timeouts} webhooks not answered within 15 s")
    odd = [h for h in hooks if h.kind == "voice" and h.status == 200
           and not (h.conference or h.apology)]
    if odd:
        verdict.problems.append(f"{len(odd)} voice answers neither the app's XML nor the apology")
    wrong_events = [h for h in hooks if h.kind != "voice" and h.status not in (None, 204)]
    if wrong_events:
        verdict.problems.append(f"{len(wrong_events)} events answered "
                                f"{sorted({h.status for h in wrong_events})}, not 204")
    if log.bad_signatures:
        verdict.problems.append(f"{log.bad_signatures} requests to the app not signed as Plivo "
                                "signs")
    missing: Counter = Counter()
    unexpected: Counter = Counter()
    for caller in group:
        must, may = expected_kinds(caller, hangup_for_apology=hangup_for_apology)
        seen = log.seen(caller.uuid)
        counts = Counter(seen)
        verdict.callbacks_expected += len(must - {"answer"})
        for kind in must:
            if counts[kind] == 0 and failed.get((caller.uuid, kind), 0) == 0:
                missing[kind] += 1
        for kind, n in counts.items():
            if kind not in may:
                unexpected[kind] += n
            if n > 1:
                verdict.duplicates += n - 1
        verdict.callbacks_delivered += sum(1 for kind in must - {"answer"} if counts[kind])
        firsts = [kind for index, kind in enumerate(seen) if kind not in seen[:index]]
        ranks = [ORDER.index(kind) for kind in firsts if kind in ORDER]
        if ranks != sorted(ranks):
            verdict.out_of_order += 1
            if verdict.out_of_order <= 3:
                verdict.notes.append(f"order {seen} for call {caller.uuid}")
    if missing:
        verdict.problems.append(f"callbacks never delivered: {dict(missing)}")
    if unexpected:
        verdict.problems.append(f"callbacks for events never acknowledged: {dict(unexpected)}")
    if verdict.duplicates and not duplicates_expected:
        verdict.problems.append(f"{verdict.duplicates} duplicate callbacks")
    if verdict.out_of_order:
        verdict.problems.append(f"{verdict.out_of_order} calls out of Plivo's order")


def settle(gateway: GatewayServer, group: list[Caller], log: AppLog, *, timeout: float,
           hangup_for_apology: bool = True, failures_settle: bool = False) -> None:
    """Wait until every expected callback arrived (or, with `failures_settle`, is kept as
    failed) and nothing is pending, or `timeout` passed."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        failed = ({failure_kind(r) for r in failed_deliveries(gateway)}
                  if failures_settle else set())
        waiting = 0
        for caller in group:
            must, _ = expected_kinds(caller, hangup_for_apology=hangup_for_apology)
            seen = set(log.seen(caller.uuid))
            waiting += sum(1 for kind in must if kind not in seen
                           and (caller.uuid, kind) not in failed)
        if waiting == 0:
            left = pending(gateway.store_url)
            if not left["outbox"] and not left["jobs"] and not spooled(gateway):
                return
        time.sleep(1.0)


def finish(verdict: Verdict, gateway: GatewayServer, twilio: Twilio, group: list[Caller],
           log: AppLog, *, hangup_for_apology: bool = True,
           failed: dict[tuple[str, str], int] | None = None,
           duplicates_expected: bool = False) -> Verdict:
    check(verdict, twilio, group, log, hangup_for_apology=hangup_for_apology, failed=failed,
          duplicates_expected=duplicates_expected)
    details: list[str] = []
    left = pending(gateway.store_url, details)
    left["spooled"] = spooled(gateway)
    verdict.left_pending = {k: v for k, v in left.items() if v and k != "failed"}
    if verdict.left_pending:
        verdict.problems.append(f"left pending: {verdict.left_pending}")
        verdict.notes += [f"left: {line}" for line in details[:6]]
    logs = gateway.logs()
    tracebacks = logs.count("Traceback (most recent call last)")
    if tracebacks:
        verdict.notes.append(f"{tracebacks} tracebacks in the gateway's log")
    return verdict


# -- the faults ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Size:
    members: int
    rooms: int
    spread: float  # seconds over which the calls start
    hold: tuple[float, float]  # seconds a member stays
    every: float  # seconds between two strikes of the fault
    settle: float  # longest wait for the callbacks at the end


def size_for(quick: bool, fault: str) -> Size:
    # The app flaps every 3 s: each of its four modes lasts long enough for several calls, and
    # the breaker's 10 s cool-down spans a whole cycle.
    every = 3.0 if fault == "flapping" else 2.5
    if quick:
        return Size(members=40 if fault == "sigkill" else 24, rooms=8,
                    spread=20.0 if fault == "flapping" else 12.0, hold=(2.0, 6.0), every=every,
                    settle=90.0)
    return Size(members=100, rooms=10, spread=40.0, hold=(3.0, 12.0), every=every, settle=150.0)


class Striker:
    """Runs `strike()` every `every` seconds in a thread until stopped."""

    def __init__(self, strike: Callable[[int], None], every: float):
        self.strike = strike
        self.every = every
        self.count = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.strike(self.count)
            except Exception as exc:  # reported, never silent
                self.errors.append(repr(exc))
            self.count += 1

    def __enter__(self) -> Striker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


@contextlib.contextmanager
def stack(workdir: Path, *, store_url: str | None = None, front: bool = False
          ) -> Iterator[tuple[GatewayServer, AppLog, FlappingFront | None]]:
    log = AppLog()
    holder: dict[str, str] = {}
    app = start_app(log, lambda: holder["base"])
    flapping = FlappingFront(app.port) if front else None
    holder["base"] = flapping.url if flapping else app.base_url
    apps = [app_config(holder["base"] + "/answer", hangup_url=holder["base"] + "/hangup")]
    gateway = GatewayServer(workdir, apps=apps, store_url=store_url, budget=BUDGET)
    try:
        with gateway:
            yield gateway, log, flapping
    finally:
        if flapping:
            flapping.stop()
        app.stop()


def fault_sigkill(workdir: Path, size: Size, rng: random.Random) -> Verdict:
    verdict = Verdict("sigkill")
    kills: Counter = Counter()
    with stack(workdir) as (gateway, log, _):
        twilio = Twilio(gateway.url)
        group = callers(size.members, size.rooms, size.hold, rng)

        def strike(count: int) -> None:
            role = "web" if count % 2 == 0 else "worker"
            pids = group_pids(gateway)[role]
            if pids:
                os.kill(rng.choice(pids), signal.SIGKILL)
                kills[role] += 1

        started = time.monotonic()
        with Striker(strike, size.every) as striker:
            run_callers(twilio, group, size.spread)
        settle(gateway, group, log, timeout=size.settle)
        verdict.seconds = time.monotonic() - started
        verdict.action = (f"{sum(kills.values())} SIGKILLs every {size.every:g} s "
                          f"({kills['web']} web worker, {kills['worker']} job worker)")
        verdict.problems += [f"fault thread: {e}" for e in striker.errors]
        if gateway.process.poll() is not None:
            verdict.problems.append("`gateway serve` stopped")
        return finish(verdict, gateway, twilio, group, log, duplicates_expected=True)


def fault_redis(workdir: Path, size: Size, rng: random.Random) -> Verdict:
    verdict = Verdict("redis")
    with RedisServer(workdir / "redis", appendonly=True) as redis, \
            stack(workdir / "gw", store_url=redis.url()) as (gateway, log, _):
            twilio = Twilio(gateway.url)
            group = callers(size.members, size.rooms, size.hold, rng)
            down = []

            def strike(count: int) -> None:
                if count % 2:  # every other strike: leave it up a while
                    return
                began = time.monotonic()
                redis.stop(kill=count % 4 == 2)
                time.sleep(1.5)
                redis.start()
                down.append(time.monotonic() - began)

            started = time.monotonic()
            with Striker(strike, size.every) as striker:
                run_callers(twilio, group, size.spread)
            settle(gateway, group, log, timeout=size.settle)
            verdict.seconds = time.monotonic() - started
            verdict.action = (f"{len(down)} restarts of redis-server (appendonly; SIGTERM and "
                              f"SIGKILL alternately), down {min(down, default=0):.1f}-"
                              f"{max(down, default=0):.1f} s each")
            verdict.problems += [f"fault thread: {e}" for e in striker.errors]
            return finish(verdict, gateway, twilio, group, log, duplicates_expected=True)


def fault_flapping(workdir: Path, size: Size, rng: random.Random) -> Verdict:
    verdict = Verdict("flapping")
    with stack(workdir, front=True) as (gateway, log, front):
        assert front is not None
        twilio = Twilio(gateway.url)
        group = callers(size.members, size.rooms, size.hold, rng)

        def strike(count: int) -> None:
            front.set_mode(FlappingFront.MODES[(count + 1) % len(FlappingFront.MODES)])

        started = time.monotonic()
        with Striker(strike, size.every) as striker:
            run_callers(twilio, group, size.spread)
        front.set_mode("healthy")
        settle(gateway, group, log, timeout=size.settle, failures_settle=True)
        kept = failed_deliveries(gateway)
        reasons = Counter(re.sub(r"\d+(\.\d+)?", "N", r.get("reason", "?"))[:70] for r in kept)
        failed = Counter(failure_kind(r) for r in kept)
        verdict.callbacks_failed = len(kept)
        if any(not r.get("reason") for r in kept):
            verdict.problems.append("failed deliveries without a reason")
        # What exhausted its retries is replayed now that the app is healthy: nothing is lost.
        replayed = sum(replay(gateway, r["id"]) for r in kept)
        verdict.callbacks_replayed = replayed
        end = time.monotonic() + 60
        while time.monotonic() < end and any(
                key[1] not in log.seen(key[0]) for key in failed):
            time.sleep(0.5)
        still = [key for key in failed if key[1] not in log.seen(key[0])]
        if still:
            verdict.problems.append(f"{len(still)} replayed callbacks never arrived")
        verdict.seconds = time.monotonic() - started
        modes = ", ".join(f"{mode} {n}" for mode, n in sorted(front.changes.items()))
        verdict.action = f"app mode changed every {size.every:g} s ({modes})"
        if reasons:
            verdict.notes.append("kept as failed: " + "; ".join(
                f"{n}× {reason}" for reason, n in reasons.most_common(4)))
        verdict.problems += [f"fault thread: {e}" for e in striker.errors]
        # Replayed callbacks come after the hangup by design: order is judged on the first
        # deliveries, so drop the replayed arrivals from the order check.
        return finish(verdict, gateway, twilio, group, without_replays(log, failed),
                      failed=dict(failed))


def without_replays(log: AppLog, failed: Counter) -> AppLog:
    """The app's log with each replayed callback's last arrival removed."""
    trimmed = AppLog()
    trimmed.bad_signatures = log.bad_signatures
    for call, kinds in log.by_call.items():
        kinds = list(kinds)
        for (failed_call, kind), n in failed.items():
            if failed_call != call:
                continue
            for _ in range(n):
                if kind in kinds:
                    del kinds[len(kinds) - 1 - kinds[::-1].index(kind)]
        trimmed.by_call[call] = kinds
    return trimmed


DISK_SIZE = "16m"  # room for SQLite's WAL (checkpointed at 4 MB) beside the filler


def fault_disk(workdir: Path, size: Size, rng: random.Random) -> Verdict:
    verdict = Verdict("disk")
    state = workdir / "state"
    state.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs",
                              str(state)], capture_output=True, text=True)
    if mounted.returncode != 0:
        verdict.problems.append(f"could not mount a tmpfs ({mounted.stderr.strip()}): the "
                                "fault did not run")
        return verdict
    try:
        with stack(workdir) as (gateway, log, _):
            twilio = Twilio(gateway.url)
            group = callers(size.members * 3 // 2, size.rooms, size.hold, rng)
            thirds = len(group) // 3
            filler = state / "filler"
            started = time.monotonic()
            # Calls before, while and after the disk is full, overlapping: those of the first
            # third are still in their rooms when the disk fills up.
            before = threading.Thread(target=run_callers,
                                      args=(twilio, group[:thirds], size.spread / 3))
            before.start()
            time.sleep(size.spread / 3)
            fill(filler)
            full_at = time.monotonic()
            run_callers(twilio, group[thirds:2 * thirds], size.spread / 3)
            before.join()
            full_for = time.monotonic() - full_at
            verdict.notes.append(f"full: {disk_use(state)}")
            filler.unlink()
            verdict.notes.append(f"freed: {disk_use(state)}")
            run_callers(twilio, group[2 * thirds:], size.spread / 3)
            verdict.notes.append(f"after: {disk_use(state)}")
            settle(gateway, group, log, timeout=size.settle, hangup_for_apology=False)
            verdict.seconds = time.monotonic() - started
            verdict.action = (f"store, queue and spool on a {DISK_SIZE} tmpfs filled up for "
                              f"{full_for:.0f} s, then freed")
            full_lines = sum(1 for line in gateway.logs().splitlines()
                             if "database or disk is full" in line)
            verdict.notes.append(f"{full_lines} log lines say 'database or disk is full'")
            hit = [c for c in group[thirds:2 * thirds] if c.webhooks.get("voice")
                   and c.webhooks["voice"].apology]
            if not hit and not full_lines:
                verdict.problems.append("the full disk was never noticed: the fault did not "
                                        "bite")
            after = [c for c in group[2 * thirds:] if c.webhooks.get("voice")
                     and not c.webhooks["voice"].conference]
            if after:
                verdict.problems.append(f"{len(after)} calls after the space was freed did not "
                                        "get the app's XML: no recovery without a restart")
            return finish(verdict, gateway, twilio, group, log, hangup_for_apology=False)
    finally:
        subprocess.run(["umount", "-l", str(state)], capture_output=True)


def fill(path: Path) -> int:
    """Write zeros to `path` until the filesystem refuses; returns the bytes written."""
    written = 0
    with path.open("wb", buffering=0) as out:
        for block in (b"\0" * 65536, b"\0" * 512, b"\0"):  # then what the block size left
            with contextlib.suppress(OSError):
                while True:
                    written += out.write(block)
    return written


def disk_use(directory: Path) -> str:
    free = os.statvfs(directory)
    wal = sum(p.stat().st_size for p in directory.glob("*-wal"))
    return f"{free.f_bavail * free.f_frsize // 1024} kB free, WAL files {wal // 1024} kB"


FAULTS: dict[str, Callable[[Path, Size, random.Random], Verdict]] = {
    "sigkill": fault_sigkill, "redis": fault_redis, "flapping": fault_flapping,
    "disk": fault_disk}


# -- the report ---------------------------------------------------------------------------------

def row(v: Verdict) -> str:
    return (f"| {v.fault} | {v.action} | {v.calls} calls ({v.conference_calls} in rooms, "
            f"{v.apologies} apologies), {v.webhooks} webhooks: slowest {v.slowest:.2f} s, "
            f"{v.server_errors} 5xx, {v.timeouts} past 15 s, {v.connection_errors} cut by a "
            f"kill | {v.callbacks_delivered}/{v.callbacks_expected} callbacks"
            + (f" ({v.callbacks_failed} kept as failed, {v.callbacks_replayed} replayed)"
               if v.callbacks_failed else "")
            + f", {v.duplicates} duplicates, {v.out_of_order} out of order, "
            f"pending at end {v.left_pending or 0} | "
            + ("OK" if v.ok else "FAIL: " + "; ".join(v.problems)) + " |")


def report(verdicts: list[Verdict], elapsed: float) -> str:
    lines = ["| fault | what was done | Twilio's side | the app's side | verdict |",
             "| --- | --- | --- | --- | --- |"]
    lines += [row(v) for v in verdicts]
    for v in verdicts:
        lines += [f"  {v.fault}: {note}" for note in v.notes]
    load = os.getloadavg()
    lines.append(f"{len(verdicts)} faults in {elapsed:.0f} s; load average "
                 f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer members, shorter scenarios (under 3 minutes in all)")
    parser.add_argument("--only", choices=sorted(FAULTS), action="append",
                        help="run only this fault (repeatable)")
    parser.add_argument("--seed", type=int, default=9, help="random seed (holds, orders)")
    parser.add_argument("--json", metavar="PATH", help="also write the verdicts as JSON here")
    parser.add_argument("--keep", action="store_true",
                        help="keep the working directories (logs) and print where")
    args = parser.parse_args(argv)
    # SIGTERM (a timeout, an impatient user) unwinds like Ctrl-C: every stack is stopped, the
    # tmpfs unmounted.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rng = random.Random(args.seed)
    verdicts = []
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="fault-campaign-"))
    try:
        for name in args.only or list(FAULTS):
            began = time.monotonic()
            verdict = FAULTS[name](workdir / name, size_for(args.quick, name), rng)
            verdict.seconds = verdict.seconds or time.monotonic() - began
            print(f"{name}: {'OK' if verdict.ok else 'FAIL'} in {time.monotonic() - began:.0f} s"
                  + ("" if verdict.ok else f": {verdict.problems}"), flush=True)
            verdicts.append(verdict)
    finally:
        if args.keep:
            print(f"logs kept in {workdir}")
        else:
            subprocess.run(["rm", "-rf", str(workdir)], check=False)
    print(report(verdicts, time.monotonic() - started))
    if args.json:
        with open(args.json, "w") as out:
            json.dump([v.__dict__ | {"ok": v.ok} for v in verdicts], out, indent=2)
    return 0 if all(v.ok for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
